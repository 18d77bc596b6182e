"""jobs: a typed spec replaces params/inputs; failures stored as data, not as HTTP bodies

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 10:00:00
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# Written out here, not imported: a migration must keep meaning what it meant when written.
OLD_DEFAULT_UPSCALE_CAP = 4096 * 2160
REFUNDED_SUFFIX = " Credits have been refunded."
CONTENT_POLICY = "provider_content_policy"
INFERENCE = "inference_failed"
SINGLE_ROLES = {
    "image_url": "image",
    "end_image_url": "end_image",
    "audio_url": "audio",
    "video_url": "video",
}
LIST_ROLES = {
    "reference_image_urls": "reference_images",
    "reference_video_urls": "reference_videos",
    "reference_audio_urls": "reference_audios",
    "scene_image_urls": "scene_images",
}

jobs = sa.table(
    "jobs",
    sa.column("id", sa.String),
    sa.column("params", sa.JSON),
    sa.column("inputs", sa.JSON),
    sa.column("error_status", sa.Integer),
    sa.column("error_body", sa.JSON),
    sa.column("spec", sa.JSON),
    sa.column("failure_kind", sa.String),
    sa.column("failure_message", sa.Text),
    sa.column("failure_refunded", sa.Boolean),
    sa.column("failure_recommended_model", sa.String),
)


def _media(inputs: dict[str, Any]) -> dict[str, Any]:
    media: dict[str, Any] = {role: inputs.get(field) for field, role in SINGLE_ROLES.items()}
    media.update({role: list(inputs.get(field) or []) for field, role in LIST_ROLES.items()})
    media["elements"] = [
        {
            "frontal_image": e.get("frontal_image_url"),
            "reference_images": list(e.get("reference_image_urls") or []),
            "video": e.get("video_url"),
        }
        for e in inputs.get("elements") or []
    ]
    return media


def _spec(params: dict[str, Any], inputs: dict[str, Any]) -> dict[str, Any]:
    # The defaults are the ones the worker applied to such rows when it ran them.
    fps = int(params.get("fps") or 24)
    duration = float(params.get("duration_s") or 5.0)
    factor = params.get("upscale_factor")
    return {
        "prompt": params.get("prompt", ""),
        "negative_prompt": params.get("negative_prompt", ""),
        "width": int(params.get("width") or 1280),
        "height": int(params.get("height") or 720),
        "fps": fps,
        "frame_count": max(1, round(duration * fps)),
        "duration_s": duration,
        "audio": bool(params.get("audio")),
        "seed": int(params.get("seed") or 0),
        "upscale_factor": factor,
        "max_output_pixels": OLD_DEFAULT_UPSCALE_CAP if factor is not None else None,
        "media": _media(inputs),
    }


def _failure(body: dict[str, Any]) -> dict[str, Any]:
    error = body.get("error")
    if isinstance(error, dict) and error.get("type") == CONTENT_POLICY:
        message = str(error.get("message", ""))
        recommended = error.get("recommended_model")
        if recommended:
            message = message.removesuffix(f" Try using {recommended} instead.")
        message = message.removesuffix(REFUNDED_SUFFIX)
        return {
            "failure_kind": CONTENT_POLICY,
            "failure_message": message,
            "failure_refunded": bool(error.get("credits_refunded")),
            "failure_recommended_model": recommended,
        }
    return {
        "failure_kind": INFERENCE,
        "failure_message": str(body.get("details", "")),
        "failure_refunded": bool(body.get("credits_refunded")),
        "failure_recommended_model": None,
    }


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("spec", sa.JSON(), nullable=True))
        batch.add_column(
            sa.Column(
                "failure_kind",
                sa.Enum(
                    INFERENCE, CONTENT_POLICY, name="failurekind", native_enum=False, length=32
                ),
                nullable=True,
            )
        )
        batch.add_column(sa.Column("failure_message", sa.Text(), nullable=True))
        batch.add_column(sa.Column("failure_refunded", sa.Boolean(), nullable=True))
        batch.add_column(sa.Column("failure_recommended_model", sa.String(200), nullable=True))
    connection = op.get_bind()
    rows = connection.execute(
        sa.select(jobs.c.id, jobs.c.params, jobs.c.inputs, jobs.c.error_body)
    ).all()
    for job_id, params, inputs, error_body in rows:
        values = {"spec": _spec(params or {}, inputs or {})}
        if error_body is not None:
            values.update(_failure(error_body))
        connection.execute(jobs.update().where(jobs.c.id == job_id).values(**values))
    with op.batch_alter_table("jobs") as batch:
        batch.alter_column("spec", existing_type=sa.JSON(), nullable=False)
        batch.drop_column("params")
        batch.drop_column("inputs")
        batch.drop_column("error_status")
        batch.drop_column("error_body")


def _old_body(kind: str, message: str, refunded: bool, recommended: str | None) -> tuple[int, Any]:
    if kind == CONTENT_POLICY:
        text = message + (REFUNDED_SUFFIX if refunded else "")
        error: dict[str, Any] = {
            "message": text,
            "type": CONTENT_POLICY,
            "credits_refunded": refunded,
        }
        if recommended:
            error["message"] += f" Try using {recommended} instead."
            error["recommended_model"] = recommended
        return 422, {"error": error}
    return 500, {
        "error": "Inference processing failed",
        "details": message,
        "credits_refunded": refunded,
    }


def _old_element(element: dict[str, Any]) -> dict[str, Any]:
    old: dict[str, Any] = {"frontal_image_url": element["frontal_image"]}
    if element["reference_images"]:
        old["reference_image_urls"] = element["reference_images"]
    if element["video"]:
        old["video_url"] = element["video"]
    return old


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("params", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("inputs", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("error_status", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("error_body", sa.JSON(), nullable=True))
    connection = op.get_bind()
    rows = connection.execute(
        sa.select(
            jobs.c.id,
            jobs.c.spec,
            jobs.c.failure_kind,
            jobs.c.failure_message,
            jobs.c.failure_refunded,
            jobs.c.failure_recommended_model,
        )
    ).all()
    for job_id, spec, kind, message, refunded, recommended in rows:
        media = spec.get("media", {})
        inputs: dict[str, Any] = {f: media[r] for f, r in SINGLE_ROLES.items() if media.get(r)}
        inputs.update({f: media[r] for f, r in LIST_ROLES.items() if media.get(r)})
        if media.get("elements"):
            inputs["elements"] = [_old_element(e) for e in media["elements"]]
        params = {k: v for k, v in spec.items() if k not in ("media", "frame_count")}
        values: dict[str, Any] = {"params": params, "inputs": inputs}
        if kind is not None:
            values["error_status"], values["error_body"] = _old_body(
                kind, message or "", bool(refunded), recommended
            )
        connection.execute(jobs.update().where(jobs.c.id == job_id).values(**values))
    with op.batch_alter_table("jobs") as batch:
        batch.alter_column("params", existing_type=sa.JSON(), nullable=False)
        batch.alter_column("inputs", existing_type=sa.JSON(), nullable=False)
        for column in (
            "spec",
            "failure_kind",
            "failure_message",
            "failure_refunded",
            "failure_recommended_model",
        ):
            batch.drop_column(column)
