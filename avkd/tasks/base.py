"""Tasks as first-class objects: one place defines each track of avkd and everything it is made of.

A :class:`Task` (``sync``: LRS2 and VocaLiST; ``emotion``: CMU-MOSEI and MulT) names its features, its stage
configs, the command-line flags each stage takes, its distillation methods, and implements its stages (train,
distill, evaluate), its report section and its demo. The CLI looks a task up by name (:data:`TASKS`, aliases
included: ``mosei`` is ``emotion``) and calls it; nothing outside a task's own package asks which task it is.
docs/architecture.md says how to add one.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from avkd.core.artifacts import (
    BENCH,
    EVALUATION,
    MANIFEST,
    Artifact,
    is_complete,
    load_artifact,
    read_manifest,
)
from avkd.core.config import resolve_config
from avkd.core.errors import ArtifactError, UsageError
from avkd.core.progress import log
from avkd.core.registry import Registry
from avkd.losses.methods import Method

__all__ = [
    "LOOP_FLAGS",
    "STAGES",
    "TASKS",
    "RunOptions",
    "Task",
    "build_report",
    "demo_summary",
    "get_task",
    "over_seeds",
    "register_task",
    "reuse_or_build",
    "seed_folder",
    "seeded_loop",
    "seeded_stage",
    "synthesize_once",
    "task_for_features",
    "task_of",
]

L = TypeVar("L")

#: The stages a task configures through :meth:`Task.config`.
STAGES = ("train", "distill", "evaluate", "demo")

#: The command-line flags of the training loop every training stage shares (:class:`avkd.train.loop.LoopConfig`).
LOOP_FLAGS = {
    "epochs": "loop.epochs",
    "batch_size": "loop.batch_size",
    "lr": "loop.lr",
    "device": "loop.device",
    "seed": "loop.seed",
    "deterministic": "loop.deterministic",
    "sync_bn": "loop.sync_batchnorm",
}


@dataclass(frozen=True)
class RunOptions:
    """How a stage treats its output: replace a complete artifact, continue a partial one, show progress."""

    overwrite: bool = False
    resume: bool = False
    show_progress: bool = True
    #: Evaluation of an ONNX export: "fp32" or "int8" graphs (None: the export's default, int8 when quantised).
    precision: str | None = None


class Task:
    """One track: subclasses set the class attributes and implement the stages (see :mod:`avkd.tasks.sync.task`)."""

    name: ClassVar[str]
    aliases: ClassVar[tuple[str, ...]] = ()
    #: The kind of features artifact the stages read (``avkd preprocess ...`` writes it).
    features_kind: ClassVar[str]
    #: The distillation methods of this task, by name.
    methods: ClassVar[Registry[Method]]
    #: stage -> the dataclass config of that stage (YAML and ``--set`` keys are its fields).
    configs: ClassVar[dict[str, type]]
    #: stage -> {flag: dotted config key}: the command-line flags a stage takes; any other flag is refused.
    flags: ClassVar[dict[str, dict[str, str]]]
    #: The validation metric that selects the best epoch (named in the one-line training summary).
    selection_metric: ClassVar[str]
    #: Where ``avkd demo --task NAME`` writes by default.
    demo_folder: ClassVar[str]

    # --------------------------------------------------------------------------------------------- configs
    def config(
        self,
        stage: str,
        config_file: str | Path | None = None,
        sets: Sequence[str] = (),
        flags: Mapping[str, Any] | None = None,
    ) -> Any:
        """The resolved config of ``stage``: defaults, then ``config_file``, then ``sets``, then the flags that
        were given (None = not given). A flag this task's stage does not take is a usage error naming it."""
        keys = self.flags.get(stage, {})
        values: dict[str, Any] = {}
        for flag, value in (flags or {}).items():
            if value is None:
                continue
            if flag not in keys:
                taken = ", ".join(f"--{f.replace('_', '-')}" for f in keys) or "none"
                raise UsageError(
                    f"--{flag.replace('_', '-')} does not apply to {stage} in the {self.name} task "
                    f"(its options: {taken}; or --set KEY=VALUE)"
                )
            values[keys[flag]] = value
        return resolve_config(
            self.configs[stage], config_file, sets, values, flags={key: flag for flag, key in keys.items()}
        )

    # ---------------------------------------------------------------------------------------------- stages
    # Each task names its library functions; they share one signature per stage across tasks, so the methods
    # below serve every task (a task overrides one only where its stage differs).
    train_stage: ClassVar[Callable[..., Artifact]]
    distill_stage: ClassVar[Callable[..., Artifact]]
    evaluate_stage: ClassVar[Callable[..., Artifact]]
    report_stage: ClassVar[Callable[..., Artifact]]
    demo_stage: ClassVar[Callable[..., dict[str, Any]]]
    #: The evaluation artifact's one-row table, which ``avkd evaluate`` prints.
    evaluation_table: ClassVar[str]

    def train(
        self, config: Any, features: Path, out: Path, run: RunOptions, init: Path | None = None
    ) -> Artifact:
        """Train a model on a features artifact into a ``model`` artifact; ``init``: a pre-trained model artifact
        to start from (``avkd pretrain``; the stage checks that it fits and records it as an input)."""
        starts = {} if init is None else {"init": init}
        return type(self).train_stage(
            config,
            features,
            out,
            overwrite=run.overwrite,
            resume=run.resume,
            show_progress=run.show_progress,
            **starts,
        )

    def distill(self, config: Any, teacher: Path, features: Path, out: Path, run: RunOptions) -> Artifact:
        """Train a student from a frozen teacher artifact into a ``model`` artifact."""
        return type(self).distill_stage(
            config,
            teacher,
            features,
            out,
            overwrite=run.overwrite,
            resume=run.resume,
            show_progress=run.show_progress,
        )

    def evaluate(
        self, config: Any, model: Path, features: Path, out: Path, label: str | None, run: RunOptions
    ) -> Artifact:
        """Evaluate a model on a features split into an ``evaluation`` artifact."""
        return type(self).evaluate_stage(
            config,
            model,
            features,
            out,
            label=label,
            overwrite=run.overwrite,
            show_progress=run.show_progress,
            precision=run.precision,
        )

    def evaluation_text(self, evaluation: Artifact) -> str:
        """The evaluation's one-row table, as ``avkd evaluate`` prints it."""
        return (evaluation.path / self.evaluation_table).read_text().rstrip()

    def report(
        self,
        evaluations: Sequence[Artifact],
        out: Path,
        title: str | None,
        run: RunOptions,
        benches: Sequence[Artifact] = (),
    ) -> Artifact:
        """A ``report`` artifact from evaluations of this task, rows in the order given; ``benches`` (``bench``
        artifacts) add a speed section."""
        return type(self).report_stage(
            evaluations, out, title=title, overwrite=run.overwrite, benches=benches
        )

    def report_text(self, report: Artifact) -> str:
        """What ``avkd report`` prints."""
        return (report.path / "report.md").read_text().rstrip()

    def report_json(self, report: Artifact) -> dict[str, Any]:
        """What ``avkd report --json`` adds to the artifact's path, id and metrics."""
        return {}

    def demo(self, out: Path, config: Any, fresh: bool, show_progress: bool) -> dict[str, Any]:
        """The whole chain on a synthetic corpus; returns a summary (artifacts, the table)."""
        return type(self).demo_stage(out, config, fresh=fresh, show_progress=show_progress)

    def describe_model(self, model: Artifact) -> str:
        """One line about a trained model: parameters, method, the best validation score."""
        m = model.metrics
        method = f"{m['method']} student, " if m.get("method") else ""
        best = m.get(f"best_{self.selection_metric}")
        score = f"{best:.4f}" if isinstance(best, float) else "n/a"
        return (
            f"{model.path}: {method}{m['parameters']:,} parameters, best {self.selection_metric} {score} at "
            f"epoch {m.get('best_epoch')}; id {model.id}"
        )


TASKS: Registry[Task] = Registry("task")


def register_task(cls: type[Task]) -> type[Task]:
    """Class decorator: register one instance of ``cls`` under its ``name`` and ``aliases``."""
    TASKS.register_object(cls.name, cls(), aliases=cls.aliases)
    return cls


def get_task(name: str) -> Task:
    """The task called ``name`` (or an alias of it); a usage error naming the tasks otherwise."""
    return TASKS.get(name)


def task_of(artifact: Artifact) -> Task:
    """The task an evaluation or report artifact belongs to (artifacts written before tasks were recorded are
    sync's)."""
    return get_task(str(artifact.manifest.get("task") or artifact.config.get("task") or "sync"))


def task_for_features(data: str | Path, task: str | None = None) -> Task:
    """The task whose ``features_kind`` is the kind of the artifact at ``data`` (``avkd evaluate`` needs no
    ``--task``); a ``task`` naming another one is a usage error. Where ``data`` is not a readable artifact (the
    task's evaluator then says why), ``task`` or sync."""
    data = Path(data)
    kind = None
    if (data / MANIFEST).is_file():
        try:
            kind = read_manifest(data).get("kind")
        except ArtifactError:
            kind = None
    owner = next((TASKS.get(name) for name in TASKS if TASKS.get(name).features_kind == kind), None)
    if owner is None:
        return get_task(task or "sync")
    if task is not None and get_task(task).name != owner.name:
        raise UsageError(
            f"--task {task}: {data} is a {kind} artifact, which the {owner.name} task evaluates; pass --task "
            f"{owner.name} or leave --task out"
        )
    return owner


def build_report(
    evaluations: Sequence[str | Path], out: str | Path, title: str | None, run: RunOptions
) -> tuple[Task, Artifact]:
    """``avkd report``: the report of the one task all ``evaluations`` belong to (sync for none); ``bench``
    artifacts among them add the speed section."""
    given = [load_artifact(path, kind=(EVALUATION, BENCH)) for path in evaluations]
    arts = [a for a in given if a.kind == EVALUATION]
    benches = [a for a in given if a.kind == BENCH]
    tasks = {task_of(a).name for a in arts}
    if len(tasks) > 1:
        raise UsageError(
            f"report: evaluations of different tasks ({', '.join(sorted(tasks))}) cannot share one report"
        )
    task = task_of(arts[0]) if arts else get_task("sync")
    return task, task.report(arts, Path(out), title, run, benches)


def seed_folder(out: Path, seed: int) -> Path:
    """Where a demo keeps the runs of training seed ``seed``: ``out`` itself for seed 0, so that ``--seeds 3``
    after a plain run reuses its runs, and ``out/seed-<seed>`` for the others."""
    return out if seed == 0 else out / f"seed-{seed}"


def seeded_loop(loop: L, seed: int, deterministic: bool) -> L:
    """A demo stage's training loop settings with the run's seed and determinism."""
    return dataclasses.replace(loop, seed=seed, deterministic=deterministic)


def seeded_stage(stage: L, seed: int, deterministic: bool, **changes: Any) -> L:
    """A training stage's config (anything with a ``loop``) with :func:`seeded_loop` and other ``changes``."""
    return dataclasses.replace(
        stage,
        loop=seeded_loop(stage.loop, seed, deterministic),  # type: ignore[attr-defined]
        **changes,
    )


def over_seeds(
    seeds: int, run: Callable[[int], tuple[Artifact, list[Artifact]]]
) -> tuple[list[Artifact], list[Artifact]]:
    """A demo's runs for seeds 0..seeds-1: ``run(seed)`` gives that seed's teacher and evaluations; returns all
    teachers and all evaluations, seed by seed (the order the report's rows and ``demo_summary`` expect)."""
    teachers: list[Artifact] = []
    evaluations: list[Artifact] = []
    for seed in range(seeds):
        teacher, runs = run(seed)
        teachers.append(teacher)
        evaluations.extend(runs)
    return teachers, evaluations


def demo_summary(
    out: Path,
    features: Artifact,
    models: Sequence[Artifact],
    evaluations: Sequence[Artifact],
    seeds: int,
    metric: str,
    table: str,
) -> dict[str, Any]:
    """What a demo returns: every artifact by its path under ``out``, the features' and the seed-0 teacher's
    metrics, seed 0's ``metric`` per evaluation label, and the printed table."""
    per_seed = len(evaluations) // seeds
    return {
        "out": str(out),
        "artifacts": {
            str(a.path.relative_to(out)): {"kind": a.kind, "id": a.id}
            for a in (features, *models, *evaluations)
        },
        "features": features.metrics,
        "teacher": models[0].metrics,
        metric: {a.manifest.get("label"): a.metrics[metric] for a in evaluations[:per_seed]},
        "table": table,
    }


def demo_out(out: str | Path, fresh: bool) -> Path:
    """A demo's output folder, created: emptied first with ``fresh``; a file in its place is a usage error."""
    out = Path(out)
    if fresh and out.exists():
        shutil.rmtree(out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out}: exists and is not a folder; choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    return out


def synthesize_once(corpus: Path, marker: Path, synthesize: Callable[[Path], L]) -> L | None:
    """A demo's synthetic corpus, made at most once: ``None`` when ``corpus / marker`` already exists, otherwise
    ``synthesize(folder)``'s result, having written into ``corpus.partial`` and renamed it onto ``corpus`` (an
    interrupted synthesis leaves no half corpus that a rerun would take as complete)."""
    if (corpus / marker).is_file():
        return None
    partial = corpus.with_name(corpus.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    summary = synthesize(partial)
    shutil.rmtree(corpus, ignore_errors=True)
    partial.rename(corpus)
    return summary


def reuse_or_build(
    path: Path,
    kind: str,
    title: str,
    build: Callable[[], Artifact],
    inputs: Sequence[Artifact] | None = None,
) -> Artifact:
    """The demo chains' step: the artifact at ``path`` if it is complete, else ``build()`` (which writes it).

    With ``inputs``, a complete artifact is reused only when it was made from exactly those artifacts (by id);
    otherwise it is rebuilt. A report is the case: ``--seeds 3`` after a plain run needs a new one.
    """
    if is_complete(path):
        done = load_artifact(path, kind=kind)
        made_from = {ref.get("id") for ref in done.manifest.get("inputs", [])}
        if inputs is None or made_from == {a.id for a in inputs}:
            log(f"{title}: reusing {path}")
            return done
        log(f"{title}: {path} was made from other inputs; rebuilding it")
        shutil.rmtree(path)
    log(f"{title}: building {path}")
    return build()
