"""Dataset building: raw marketplace sources -> one labelled, de-duplicated, split dataset.

The source config (`data/sources.toml`), the category map (`data/category_map.csv`) and the
title rules (`data/title_rules.csv`) are versioned in the repo and readable by a reviewer:
they are the project's reading of the policy in `LABELLING.md`. Every label in them, in
the corrections and in the hand-labelled titles must be a cluster of the policy file
(`data/policy.toml`).

- `sources`: the source config and reading one raw file;
- `mapping`: categories and titles to clusters, and agreement with the hand labels;
- `build`: the dataset itself (de-duplication, corrections, split, storage, reports);
- `errors`: `DataError`, what every part raises for a problem in the data.
"""

from clustercls.data.build import (
    CORRECTION_COLUMNS,
    DATASET_COLUMNS,
    BuildResult,
    Dropped,
    build_dataset,
    check_labels,
    describe_dataset,
    fingerprint,
    load_dataset,
    load_hand_labelled,
    load_policy_probes,
    near_duplicate_key,
    read_corrections,
    report_markdown,
    stable_id,
    write_dataset,
)
from clustercls.data.errors import (
    DataError,
)
from clustercls.data.mapping import (
    DROP,
    CategoryRule,
    Mapping,
    TitleRule,
    load_mapping,
    mapping_agreement,
    mapping_from_config,
    mapping_table,
)
from clustercls.data.sources import (
    Source,
    SourceConfig,
    load_source_config,
    read_source,
)

__all__ = [
    "CORRECTION_COLUMNS",
    "DATASET_COLUMNS",
    "DROP",
    "BuildResult",
    "CategoryRule",
    "DataError",
    "Dropped",
    "Mapping",
    "Source",
    "SourceConfig",
    "TitleRule",
    "build_dataset",
    "check_labels",
    "describe_dataset",
    "fingerprint",
    "load_dataset",
    "load_hand_labelled",
    "load_mapping",
    "load_policy_probes",
    "load_source_config",
    "mapping_agreement",
    "mapping_from_config",
    "mapping_table",
    "near_duplicate_key",
    "read_corrections",
    "read_source",
    "report_markdown",
    "stable_id",
    "write_dataset",
]
