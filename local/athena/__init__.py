"""The offline stand-in for Athena: the stack's Glue catalog and S3 files, queried by DuckDB.

```python
from local.athena import AthenaStandIn, current_versions
with AthenaStandIn("customer_profiles_export", glue=glue, s3=s3) as athena:
    athena.query("SELECT * FROM current_by_type")
current_versions("customer_profiles_export", "_profile", glue=glue, s3=s3)  # {(domain, id): lastUpdated}
```
"""

from local.athena.engine import (
    AthenaStandIn,
    PartitionFiles,
    StaleView,
    catalog_partitions,
    current_state,
    current_versions,
)
from local.athena.serde import SerdeError

__all__ = [
    "AthenaStandIn",
    "PartitionFiles",
    "SerdeError",
    "StaleView",
    "catalog_partitions",
    "current_state",
    "current_versions",
]
