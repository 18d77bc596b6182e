"""Every table's module, imported so that `metadata` is complete (for migrations and tests)."""

from videoqueue.auth import models as _auth_models  # noqa: F401
from videoqueue.billing import models as _billing_models  # noqa: F401
from videoqueue.db.base import Base
from videoqueue.jobs import models as _job_models  # noqa: F401

metadata = Base.metadata
