"""`crowdloop history`: one line a round with the ids that tie it to git, DVC, MLflow and Prefect.

Read from the campaign alone (round folders, git tags, data.dvc at each tag): no
server is contacted, so it answers at once; each id can then be looked up where
it lives (``git show round-NNN``, the MLflow run page, the Prefect flow run).
"""

from __future__ import annotations

from pathlib import Path

from crowdloop.tasks import config, lineage, store, version

COLUMNS = [("round", "{:>5}"), ("tag", "{:<9}"), ("git_commit", "{:<12}"), ("dvc_md5", "{:<12}"),
           ("mlflow_run_id", "{:<32}"), ("prefect_flow_run_id", "{:<36}"), ("annotations", "{:>11}"),
           ("test_accuracy", "{:>13.3f}"), ("krippendorff_alpha", "{:>18.3f}"), ("flagged_annotators", "{:>18}"),
           ("stop", "{!s:>5}")]


def rows(campaign: store.Campaign) -> list[dict]:
    """One dict per completed round with its lineage ids, annotations, accuracy, the annotators'
    agreement (Krippendorff's alpha), how many annotators were flagged and ``stop`` (the stopping
    signal), each when the round's metrics have it."""
    table = []
    for number in store.completed_rounds(campaign):
        metrics = store.read_round_metrics(campaign, number)
        ids = store.read_lineage(campaign, number)
        tag = version.round_tag(number)
        commit = version.commit_of(campaign, tag)  # None: a round being written, or interrupted before its commit
        table.append({
            "round": number, "tag": tag if commit else None, "git_commit": commit,
            "dvc_md5": version.data_md5(campaign, tag), "mlflow_run_id": ids.get("mlflow_run_id"),
            "prefect_flow_run_id": ids.get("prefect_flow_run_id"), "annotations": metrics.get("annotations"),
            "test_accuracy": metrics.get("test_accuracy"), "krippendorff_alpha": metrics.get("krippendorff_alpha"),
            "flagged_annotators": metrics.get("flagged_annotators"), "stop": _yes_no(metrics.get("stop")),
        })
    return table


def _yes_no(stop) -> str | None:
    """The stopping signal as people read it: the metrics store it as 0/1 (or True/False)."""
    return None if stop is None else ("yes" if bool(stop) else "no")


def render(root: Path) -> str:
    campaign = store.open_campaign(root)
    table = rows(campaign)
    if not table:
        name = lineage.campaign_name(campaign, config.load(campaign.params_file).name)
        return f"campaign {name}: no round has run yet"
    widths = [len(fmt.format(*([0.0] if "f}" in fmt else [""]))) for _, fmt in COLUMNS]
    lines = [" ".join(name.ljust(w) if "<" in fmt else name.rjust(w)
                      for (name, fmt), w in zip(COLUMNS, widths))]
    for row in table:
        lines.append(" ".join(_cell(fmt, row[name], w) for (name, fmt), w in zip(COLUMNS, widths)))
    return "\n".join(lines)


def _cell(fmt: str, value, width: int) -> str:
    if value is None:
        return "-".rjust(width) if ">" in fmt else "-".ljust(width)
    if isinstance(value, str) and len(value) > width:  # a full commit or md5: the short form
        value = value[:width]
    return fmt.format(value)
