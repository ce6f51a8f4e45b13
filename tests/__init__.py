from . import test_pipeline
from . import test_failures
from . import test_rollback
from . import test_security
from . import test_external_api
from . import test_api_health
from . import test_api_deployments
from . import test_api_tasks
