"""`crowdloop simulate`: its flags and what it runs (the rest of the CLI is crowdloop/cli.py)."""

from __future__ import annotations

from pathlib import Path

PRESET_NAMES = ("tutorial", "rte")  # flows/simulate.py PRESETS; named here to keep --help fast


def add_parser(sub) -> None:
    """Add the ``simulate`` sub-command to the argparse sub-parsers ``sub``."""
    p = sub.add_parser("simulate", help="replay a labeled dataset: strategies x seeds -> learning curves")
    p.add_argument("source", type=Path, help="the dataset: a folder (tutorial) or a file (long, wide, datasets)")
    p.add_argument("--format", choices=["tutorial", "long", "wide", "datasets"], default="tutorial")
    p.add_argument("--examples", type=Path, help="long format: the examples file (id and text columns)")
    p.add_argument("--example-col", help="example id column (default: example_id for long, id for wide)")
    p.add_argument("--annotator-col", default="annotator_id", help="long layout: annotator id column")
    p.add_argument("--label-col", default="label", help="long layout: label column")
    p.add_argument("--annotator-cols", help="wide layout: comma-separated annotator columns (default: all others)")
    p.add_argument("--layout", choices=["long", "wide"], default="long", help="datasets format: table layout")
    p.add_argument("--split", default="train", help="datasets format: the split to read")
    p.add_argument("--gold-col", help="gold label column in the annotations file")
    p.add_argument("--examples-id-col", help="id column of --examples (default: --example-col)")
    p.add_argument("--examples-gold-col", help="gold label column of --examples")
    p.add_argument("--text-cols", default="text", help="comma-separated text columns, joined")
    p.add_argument("--label-names", help="map raw labels to class names: 0=impolite,1=polite")
    p.add_argument("--allow-pickle", action="store_true",
                   help="tutorial format: load extra_annotations.npy (unpickling runs code: trusted files only)")
    p.add_argument("--preset", choices=sorted(PRESET_NAMES), default="tutorial")
    p.add_argument("--rounds", type=int, help="override the preset's number of rounds")
    p.add_argument("--answered-by", choices=["tutorial", "routed"], default=None,
                   help="who answers a pick: a random annotator already seen (the tutorial's protocol, "
                        "the presets' default) or the one routing chose by quality")
    p.add_argument("--seeds", type=int, default=5, help="seeds per arm (0..N-1)")
    p.add_argument("--strategies", default="activelab,random",
                   help="comma-separated arms: built-in names, module:function, or 'all'")
    p.add_argument("--params", type=Path, help="params.yaml for the model settings (default: the template)")
    p.add_argument("--target", type=float, default=0.9, help="accuracy the summary counts annotations to")
    p.add_argument("--out", type=Path, default=Path("simulations/latest"))
    p.set_defaults(func=run)


def run(args) -> None:
    """`crowdloop simulate`: import, split, run every arm x seed, print the summary."""
    from crowdloop import api

    strategies = [s.strip() for s in args.strategies.split(",") if s.strip()]
    result = api.simulate(args.source, format=args.format, preset=args.preset, seeds=args.seeds,
                          strategies=strategies, rounds=args.rounds, answered_by=args.answered_by,
                          params=args.params, target=args.target, out=args.out, **import_options(args))
    print(result["summary"].to_string())
    print("\nwrote " + ", ".join(str(p) for p in result["paths"]) +
          f"\nMLflow: mlflow ui --backend-store-uri sqlite:///{args.out}/mlruns/mlflow.db")


def import_options(args) -> dict:
    """The reader options of ``importers.load`` for ``args.format``, from the flags."""
    names = None
    if args.label_names:
        names = dict(pair.split("=", 1) for pair in args.label_names.split(","))
    text_cols = tuple(c.strip() for c in args.text_cols.split(",") if c.strip())
    annotator_cols = tuple(c.strip() for c in args.annotator_cols.split(",")) if args.annotator_cols else None
    if args.format == "tutorial":
        return {"allow_pickle": args.allow_pickle, "label_names": names}
    if args.format == "long":
        return dict(examples_file=args.examples, example_col=args.example_col or "example_id",
                    annotator_col=args.annotator_col, label_col=args.label_col, gold_col=args.gold_col,
                    examples_id_col=args.examples_id_col, examples_gold_col=args.examples_gold_col,
                    text_cols=text_cols, label_names=names)
    if args.format == "wide":
        if len(text_cols) != 1:
            raise SystemExit("crowdloop simulate: the wide format takes one --text-cols column")
        return dict(id_col=args.example_col or "id", text_col=text_cols[0], annotator_cols=annotator_cols,
                    gold_col=args.gold_col, label_names=names)
    return dict(split=args.split, layout=args.layout, text_col=text_cols, id_col=args.example_col,
                annotator_col=args.annotator_col, label_col=args.label_col, annotator_cols=annotator_cols,
                gold_col=args.gold_col, label_names=names)
