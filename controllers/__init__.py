from . import common
from . import health
from . import deployments
from . import gates
from . import tasks
from . import fallback
