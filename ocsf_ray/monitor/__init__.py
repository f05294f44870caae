"""Model monitoring: drift of current data against a bundle's reference, and retraining
with champion / challenger (see docs/MONITORING.md).

`monitor_archive` checks each family's embeddings, features and scores and says whether
to retrain; `retrain_challenger` trains a challenger on the current data and promotes it
only when it is not worse on held-out data. `ocsf-ray monitor` exits with `EXIT_RETRAIN`
when retraining is recommended, `EXIT_NO_DRIFT` otherwise.
"""

from ocsf_ray.monitor.champion import champion_train_options, retrain_challenger
from ocsf_ray.monitor.options import MonitorOptions
from ocsf_ray.monitor.report import monitor_archive, write_report

EXIT_NO_DRIFT = 0
EXIT_RETRAIN = 3

__all__ = ["EXIT_NO_DRIFT", "EXIT_RETRAIN", "MonitorOptions", "champion_train_options", "monitor_archive",
           "retrain_challenger", "write_report"]
