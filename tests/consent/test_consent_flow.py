"""The Seedance face-media consent flow (spec §11.2) through the real app, with real faces.

scikit-image's `astronaut()` shows a face, `coffee()` does not; the reference clips are made
from their frames.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from sqlalchemy import func, select

from tests.conftest import Env
from tests.media_files import coffee_clip, coffee_png, data_url, face_clip, face_png
from videoqueue.billing.models import Account
from videoqueue.jobs.models import Job

I2V = "seedance-2-0-image-to-video"
R2V = "seedance-2-0-reference-to-video"
PUBLIC_I2V = "seedance-2-0-image-to-video-basic"
CONSENTS = {
    "seedance": {
        "confirmed_terms_and_privacy": True,
        "confirmed_legal_right": True,
        "confirmed_screening_acknowledged": True,
    }
}
POLICY_STATEMENTS = 4


class Client:
    def __init__(self, env: Env) -> None:
        self.env = env
        self.account_id = env.make_account(100)
        self.key = env.make_key(self.account_id)

    def queue(self, **body: Any) -> Any:
        return self.env.post("/video/queue", body, self.key)

    def consents(self) -> list[dict[str, Any]]:
        response = self.env.client.get(
            "/api/v1/consents", headers={"Authorization": f"Bearer {self.key}"}
        )
        assert response.status_code == 200, response.text
        assert response.json()["object"] == "list"
        return list(response.json()["data"])

    def revoke(self, consent_id: str) -> Any:
        return self.env.client.delete(
            f"/api/v1/consents/{consent_id}", headers={"Authorization": f"Bearer {self.key}"}
        )

    def jobs(self) -> int:
        with self.env.db.transaction() as session:
            return (
                session.scalar(
                    select(func.count()).select_from(Job).where(Job.account_id == self.account_id)
                )
                or 0
            )

    def balance_micros(self) -> int:
        with self.env.db.transaction() as session:
            account = session.get(Account, self.account_id)
            assert account is not None
            return account.balance_micros


@pytest.fixture
def client(env: Env) -> Client:
    return Client(env)


def i2v(image: bytes, **extra: Any) -> dict[str, Any]:
    return {
        "model": I2V,
        "prompt": "She turns and smiles",
        "duration": "5s",
        "image_url": data_url(image, "image/png"),
        **extra,
    }


def needs_consent_body(*roles: str) -> dict[str, Any]:
    from videoqueue.consent.flow import POLICY_TEXT

    return {
        "error": {
            "code": "needs_consent",
            "message": "Seedance consent is required for this request.",
        },
        "consent_flow": "seedance",
        "face_media_roles": list(roles),
        "consent": {"consent_version": "v2.0", "policy_text": POLICY_TEXT},
        "docs_url": "https://docs.venice.ai/guides/media/seedance-face-consent",
    }


def test_a_face_without_consent_answers_409_needs_consent_uncharged(client: Client) -> None:
    response = client.queue(**i2v(face_png()))
    assert response.status_code == 409
    assert response.json() == needs_consent_body("image")
    policy = response.json()["consent"]["policy_text"]
    assert len(policy.split("\n")) == POLICY_STATEMENTS
    assert client.balance_micros() == 100_000_000
    assert client.jobs() == 0
    jobs = client.env.settings.data_dir / "media" / "jobs"
    assert not jobs.exists() or not [p for p in jobs.rglob("*") if p.is_file()], (
        "the job's inputs were deleted"
    )


def test_media_without_a_face_needs_no_consent(client: Client) -> None:
    assert client.queue(**i2v(coffee_png())).status_code == 200
    assert client.consents() == []


def test_listed_public_models_never_ask(client: Client) -> None:
    response = client.queue(**i2v(face_png(), model=PUBLIC_I2V))
    assert response.status_code == 200, response.text


def test_resubmitting_with_consent_queues_and_charges(client: Client) -> None:
    assert client.queue(**i2v(face_png())).status_code == 409
    response = client.queue(**i2v(face_png(), consents=CONSENTS))
    assert response.status_code == 200, response.text
    assert response.json()["model"] == I2V
    assert client.jobs() == 1
    assert client.balance_micros() < 100_000_000


def test_attested_bytes_are_not_asked_about_again(client: Client) -> None:
    image = face_png()
    assert client.queue(**i2v(image, consents=CONSENTS)).status_code == 200
    assert client.queue(**i2v(image)).status_code == 200, "same bytes: already attested"
    assert client.queue(**i2v(image, prompt="another prompt")).status_code == 200
    resized = face_png(size=336)
    response = client.queue(**i2v(resized))
    assert response.status_code == 409, "re-encoded bytes ask again"
    (record,) = client.consents()
    assert record["media"] == [{"sha256": hashlib.sha256(image).hexdigest(), "role": "image"}]


def test_new_face_media_beside_attested_media_asks_for_the_new_only(client: Client) -> None:
    image = face_png()
    assert client.queue(**i2v(image, consents=CONSENTS)).status_code == 200
    end = face_png(size=352)
    response = client.queue(**i2v(image, end_image_url=data_url(end)))
    assert response.status_code == 409
    assert response.json()["face_media_roles"] == ["end_image"]


def test_consent_is_per_account(env: Env) -> None:
    first, second = Client(env), Client(env)
    assert first.queue(**i2v(face_png(), consents=CONSENTS)).status_code == 200
    assert second.queue(**i2v(face_png())).status_code == 409
    assert second.consents() == []
    (record,) = first.consents()
    assert second.revoke(record["id"]).status_code == 404
    assert len(first.consents()) == 1


def test_revoking_a_consent_makes_the_flow_ask_again(client: Client) -> None:
    image = face_png()
    assert client.queue(**i2v(image, consents=CONSENTS)).status_code == 200
    (record,) = client.consents()
    assert record["consent_flow"] == "seedance"
    assert record["consent_version"] == "v2.0"
    assert record["model"] == I2V
    assert record["created_at"].endswith("Z")
    response = client.revoke(record["id"])
    assert response.status_code == 200
    assert response.json() == {"success": True}
    assert client.consents() == []
    assert client.queue(**i2v(image)).status_code == 409
    assert client.revoke(record["id"]).status_code == 404
    assert client.revoke(record["id"]).json() == {"error": "Consent record not found"}


def test_consent_routes_need_credentials(env: Env) -> None:
    bad = {"Authorization": "Bearer vq_not_a_key"}
    assert env.client.get("/api/v1/consents", headers=bad).status_code == 401
    assert env.client.delete("/api/v1/consents/x", headers=bad).status_code == 401
    anonymous = env.client.get("/api/v1/consents")
    assert anonymous.status_code == env.post("/video/retrieve", {}).status_code != 200


def test_reference_images_and_videos_name_their_roles(client: Client) -> None:
    body = {
        "model": R2V,
        "prompt": "Refer to <Image 1> and <Video 1>",
        "duration": "5s",
        "reference_image_urls": [data_url(coffee_png()), data_url(face_png())],
        "reference_video_urls": [data_url(face_clip())],
    }
    response = client.queue(**body)
    assert response.status_code == 409
    assert response.json() == needs_consent_body("reference_image", "reference_video")
    assert client.queue(**body, consents=CONSENTS).status_code == 200
    (record,) = client.consents()
    assert [m["role"] for m in record["media"]] == ["reference_image", "reference_video"]


def test_a_face_later_in_a_reference_video_is_found(client: Client) -> None:
    body = {
        "model": R2V,
        "prompt": "Refer to <Video 1>",
        "duration": "5s",
        "reference_video_urls": [data_url(face_clip(3.0, face_after_s=2.0))],
    }
    response = client.queue(**body)
    assert response.status_code == 409
    assert response.json()["face_media_roles"] == ["reference_video"]


def test_a_reference_video_without_a_face_needs_no_consent(client: Client) -> None:
    response = client.queue(
        model=R2V,
        prompt="Refer to <Video 1>",
        duration="5s",
        reference_video_urls=[data_url(coffee_clip())],
    )
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "seedance",
    [
        {**CONSENTS["seedance"], "consent_version": "v2.0"},
        {**CONSENTS["seedance"], "confirmed_legal_right": False},
        {"confirmed_terms_and_privacy": True, "confirmed_legal_right": True},
    ],
)
def test_consents_must_be_exactly_three_trues(client: Client, seedance: dict[str, Any]) -> None:
    response = client.queue(**i2v(face_png(), consents={"seedance": seedance}))
    assert response.status_code == 400
    assert response.json()["error"] == "Invalid request parameters"
    assert client.consents() == []
