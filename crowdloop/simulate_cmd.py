"""`crowdloop simulate` and `crowdloop aggregate`: their flags and what they run (the rest of the CLI is
crowdloop/cli.py). Both read a multi-annotator dataset with the same reader flags."""

from __future__ import annotations

from pathlib import Path

from crowdloop.tasks.simulation_protocol import ANSWERED_BY, EVALUATE, PRESETS


def add_parser(sub) -> None:
    """Add the ``simulate`` and ``aggregate`` sub-commands to the argparse sub-parsers ``sub``."""
    p = sub.add_parser("simulate", help="replay a labeled dataset: strategies x seeds -> learning curves")
    _add_reader_flags(p)
    p.add_argument("--preset", choices=sorted(PRESETS), default="tutorial",
                   help="the protocol bundle: tutorial (100 x 2 labels, 25 rounds x 25) or rte (100 x 1, 20 x 20); "
                        "the flags below change one part of it")
    p.add_argument("--rounds", type=int, help="rounds per arm x seed")
    p.add_argument("--batch-size", type=int, help="annotations asked for per round")
    p.add_argument("--start-size", type=int, dest="n_start", help="examples labeled at the start")
    p.add_argument("--labels-per-start", type=int, help="labels each starting example has")
    p.add_argument("--max-annotations", type=int, dest="max_annotations_per_example",
                   help="most annotations one example may collect")
    p.add_argument("--folds", type=int, help="k in k-fold out-of-sample prediction (both presets: 3; "
                                             "params.yaml's predict.folds is not read by a simulation)")
    p.add_argument("--test-size", type=float, help="share of the gold examples held out as the test split "
                                                   "when the data has none (default 0.25)")
    p.add_argument("--evaluate", choices=list(EVALUATE), default=None,
                   help="score on the test split (default) or on a validation split carved from the pool "
                        "(the test split is then left out: choose settings this way)")
    p.add_argument("--validation-size", type=float, help="share of the pool held out with --evaluate validation")
    p.add_argument("--answered-by", choices=list(ANSWERED_BY), default=None,
                   help="who answers a pick: a random annotator already seen (the tutorial's protocol, "
                        "the presets' default) or the one routing chose by quality")
    p.add_argument("--goes-bad", type=int, dest="goes_bad",
                   help="from this round on, --bad-annotator answers at random (what routing.min_quality in "
                        "--params should catch)")
    p.add_argument("--bad-annotator", help="with --goes-bad: who (default: the annotator holding the most answers)")
    p.add_argument("--seeds", type=int, default=5, help="seeds per arm (0..N-1)")
    p.add_argument("--strategies", default="auto,random",
                   help="comma-separated arms: built-in names, module:function, or 'all' (default: auto, the "
                        "default strategy, against random)")
    p.add_argument("--consensus", help="consensus bake-off: comma-separated consensus methods (or 'all'); every "
                                       "strategy runs with each, in arms named strategy+method")
    p.add_argument("--params", type=Path, help="params.yaml for the model, routing and budget settings (default: the template); "
                                               "each arm sets its own score.strategy and consensus.method")
    p.add_argument("--metric", default=None,
                   choices=["accuracy", "macro_f1", "balanced_accuracy", "consensus_accuracy"],
                   help="what annotations-to-target and ROI read (default: macro_f1)")
    p.add_argument("--target", type=float, default=0.9, help="--metric value the summary counts annotations to")
    p.add_argument("--out", type=Path, default=Path("simulations/latest"))
    p.add_argument("--embedding-cache", type=Path, default=None,
                   help="a folder for the text embeddings, shared by simulations of the same texts: each text is "
                        "embedded once across them (default: OUT/.cache)")
    p.set_defaults(func=run)
    _add_aggregate(sub)


def _add_reader_flags(p) -> None:
    p.add_argument("source", type=Path, help="the dataset: a folder (tutorial) or a file (long, wide, datasets)")
    p.add_argument("--format", choices=["tutorial", "long", "wide", "datasets", "lewidi"], default="tutorial",
                   help="lewidi: the Learning-With-Disagreements JSON (a file, or a folder of *_train/_dev/_test.json)")
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


def _add_aggregate(sub) -> None:
    p = sub.add_parser("aggregate", help="one-shot: every consensus method on a whole dataset's annotations, "
                                         "accuracy against its gold")
    _add_reader_flags(p)
    p.add_argument("--methods", default="all",
                   help="comma-separated consensus methods, or 'all' (every one that needs no model)")
    p.add_argument("--labels-per-item", default="all,1,3,5",
                   help="label counts per example to subsample to ('all': every label)")
    p.add_argument("--draws", type=int, default=5, help="seeded subsamples per label count (mean ± std)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, help="write every draw's accuracy to this CSV")
    p.set_defaults(func=run_aggregate)


def run(args) -> None:
    """`crowdloop simulate`: import, split, run every arm x seed, print the summary."""
    from crowdloop import api

    strategies = [s.strip() for s in args.strategies.split(",") if s.strip()]
    protocol = {name: getattr(args, name) for name in ("rounds", "batch_size", "n_start", "labels_per_start",
                                                        "max_annotations_per_example", "folds", "test_size",
                                                        "answered_by", "evaluate", "validation_size", "goes_bad",
                                                        "bad_annotator")}
    consensus = [c.strip() for c in args.consensus.split(",") if c.strip()] if args.consensus else None
    result = api.simulate(args.source, format=args.format, preset=args.preset, seeds=args.seeds,
                          strategies=strategies, params=args.params, target=args.target, metric=args.metric,
                          out=args.out, protocol=protocol, consensus=consensus,
                          embedding_cache=args.embedding_cache, **import_options(args))
    print((Path(args.out) / "summary.txt").read_text().rstrip())
    print("\nwrote " + ", ".join(str(p) for p in result["paths"]) +
          f"\nMLflow: mlflow ui --backend-store-uri sqlite:///{args.out}/mlruns/mlflow.db")


def run_aggregate(args) -> None:
    """`crowdloop aggregate`: read the dataset, aggregate it with every method, print the table."""
    from crowdloop.tasks import aggregate, config_checks, importers
    from crowdloop.tasks.errors import ConfigError
    from crowdloop.tasks.wording import count

    methods = list(aggregate.MODEL_FREE) if args.methods == "all" else config_checks.consensus_methods(
        [m.strip() for m in args.methods.split(",") if m.strip()])
    counts = aggregate.label_counts(args.labels_per_item)
    if args.out is not None and args.out.is_dir():  # checked before the work, not after it
        raise ConfigError(f"--out {args.out} is a folder; name the CSV file to write (e.g. {args.out / 'draws.csv'}).")
    replay = importers.load(args.format, args.source, **import_options(args))
    results = aggregate.from_replay(replay, methods=methods, labels_per_item=counts, draws=args.draws, seed=args.seed)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        results.to_csv(args.out, index=False)
    print(f"accuracy against the gold of {results['examples'].max()} examples "
          f"(mean ± std over {count(args.draws, 'draw')} below all labels; best: its lead over the runner-up)")
    print(aggregate.summary(results).to_string())


def import_options(args) -> dict:
    """The reader options of ``importers.load`` for ``args.format``, from the flags."""
    names = label_names(args.label_names) if args.label_names is not None else None
    text_cols = tuple(c.strip() for c in args.text_cols.split(",") if c.strip())
    annotator_cols = tuple(c.strip() for c in args.annotator_cols.split(",")) if args.annotator_cols else None
    if args.format == "tutorial":
        return {"allow_pickle": args.allow_pickle, "label_names": names}
    if args.format == "long":
        return dict(examples_file=args.examples, example_col=args.example_col or "example_id",
                    annotator_col=args.annotator_col, label_col=args.label_col, gold_col=args.gold_col,
                    examples_id_col=args.examples_id_col, examples_gold_col=args.examples_gold_col,
                    text_cols=text_cols, label_names=names)
    if args.format == "lewidi":
        return {"label_names": names}
    if args.format == "wide":
        if len(text_cols) != 1:
            from crowdloop.tasks.errors import ConfigError

            raise ConfigError(f"--text-cols names {len(text_cols)} columns ({args.text_cols}); the wide format "
                              "takes one text column.")
        return dict(id_col=args.example_col or "id", text_col=text_cols[0], annotator_cols=annotator_cols,
                    gold_col=args.gold_col, label_names=names)
    return dict(split=args.split, layout=args.layout, text_col=text_cols, id_col=args.example_col,
                annotator_col=args.annotator_col, label_col=args.label_col, annotator_cols=annotator_cols,
                gold_col=args.gold_col, label_names=names)


def label_names(text: str) -> dict[str, str]:
    """``--label-names 0=impolite,1=polite`` -> {"0": "impolite", "1": "polite"}; ConfigError if malformed."""
    from crowdloop.tasks.errors import ConfigError

    names = {}
    for pair in (p.strip() for p in text.split(",") if p.strip()):
        raw, sep, name = (part.strip() for part in pair.partition("="))
        if not sep or not raw or not name:
            raise ConfigError(f"--label-names has {pair!r}; write each as raw=name, comma-separated "
                              "(e.g. 0=impolite,1=polite).")
        if raw in names:
            raise ConfigError(f"--label-names maps {raw!r} twice ({names[raw]!r} and {name!r}); map it once.")
        names[raw] = name
    if not names:
        raise ConfigError("--label-names is empty; write each class as raw=name, comma-separated "
                          "(e.g. 0=impolite,1=polite), or leave the flag out.")
    return names
