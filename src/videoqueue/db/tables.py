"""Every table's module, imported so that `metadata` is complete (for migrations and tests)."""

from videoqueue.auth import models as _auth_models  # noqa: F401
from videoqueue.auth import nonces as _nonce_models  # noqa: F401
from videoqueue.billing import models as _billing_models  # noqa: F401
from videoqueue.billing import wallet_models as _wallet_models  # noqa: F401
from videoqueue.consent import models as _consent_models  # noqa: F401
from videoqueue.db.base import Base
from videoqueue.delivery import models as _delivery_models  # noqa: F401
from videoqueue.fleet import models as _fleet_models  # noqa: F401
from videoqueue.jobs import models as _job_models  # noqa: F401
from videoqueue.webhooks import models as _webhook_models  # noqa: F401

metadata = Base.metadata
