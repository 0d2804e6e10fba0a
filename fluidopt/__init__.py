"""fluidopt: optimisation models and an online executor for LLM-inference scheduling
under KV-cache memory limits."""

from fluidopt.deployment import Deployment, TimeModel, load_deployment
from fluidopt.workload import Workload

__version__ = "0.1.0"
__all__ = ["Deployment", "TimeModel", "Workload", "load_deployment", "__version__"]
