"""Reordering ``classes`` in params.yaml between rounds changes no consensus label.

The next round's CROWDLAB reads the last round's probabilities by class *name*; before,
it took their columns by position, and reversing the classes changed 16% of the demo's
consensus labels.
"""

from __future__ import annotations

import shutil

import pandas as pd
import pytest
import yaml

from crowdloop import cli
from crowdloop.tasks import files, store

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_reordering_classes_between_rounds_keeps_every_consensus_label(tmp_path, campaign_factory):
    camp = campaign_factory(tmp_path / "as-made")
    assert cli.main(["-C", str(camp.root), "round", "--simulate", "--rounds", "2"]) == 0
    copy = store.Campaign(tmp_path / "reordered")
    shutil.copytree(camp.root, copy.root)
    params = yaml.safe_load(copy.params_file.read_text())
    params["classes"] = params["classes"][::-1]
    copy.params_file.write_text(yaml.safe_dump(params, sort_keys=False))

    for campaign in (camp, copy):
        assert cli.main(["-C", str(campaign.root), "round", "--simulate"]) == 0
    as_made, reordered = (files.read_parquet(c.round_dir(3) / "consensus.parquet").set_index("example_id")
                          for c in (camp, copy))
    assert len(as_made) > 30 and as_made["consensus_label"].nunique() > 1
    pd.testing.assert_series_equal(as_made["consensus_label"], reordered["consensus_label"])
    pd.testing.assert_series_equal(as_made["num_annotations"], reordered["num_annotations"])
    probs = files.read_parquet(copy.round_dir(3) / "pred_probs.parquet").set_index("example_id")
    assert list(probs.columns) == params["classes"]  # stored by name, in the campaign's order
