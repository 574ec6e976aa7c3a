"""Model cards: what a model is, what it was trained on, and how well it reconstructs.

``card.md`` sits next to the weights (``model.safetensors`` or ``model.pt``) in a model folder. ``livelatent info [MODEL]`` prints it;
for a checkpoint without a card it prints the config and training summary the checkpoint
carries.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..atomic import atomic_path
from ..config import DEFAULT_MODEL_DIR
from ..errors import ModelLoadError
from .checkpoint import CHECKPOINT_NAME, PACK_WEIGHTS_NAME, load_checkpoint
from .packs import pack_info

__all__ = ["CARD_NAME", "write_card", "card_text", "cli_info"]

CARD_NAME = "card.md"
_METRIC_ROWS = (("snr_db", "SNR (dB, higher is better)", "{:.2f}"),
                ("spectral_convergence", "spectral convergence (n_fft 2048, lower is better)", "{:.4f}"),
                ("multiscale_spectral_distance", "multi-scale spectral distance (lower is better)", "{:.4f}"),
                ("log_spectral_l1", "mean log-magnitude L1 over the 5 scales", "{:.4f}"),
                ("mse", "MSE", "{:.3e}"))


def _fmt(template: str, value) -> str:
    return "n/a" if value is None else template.format(value)


def card_text(summary: dict, *, title: str = "RawAudioVAE model") -> str:
    """The Markdown card for a training summary (as returned by :func:`~livelatent.model.train.train`)."""
    config = summary.get("config", {})
    settings = summary.get("settings", {})
    data = summary.get("data", {})
    metrics = summary.get("metrics", {})
    lines = [f"# {title}", ""]
    intro = summary.get("intro")
    if intro:
        lines += [intro, ""]
    lines += ["## Model", "",
              f"RawAudioVAE: {config.get('window')} samples -> {config.get('hidden')} (ReLU) -> "
              f"{config.get('latent')} mu / {config.get('latent')} logvar; decoder {config.get('latent')} -> "
              f"{config.get('hidden')} (ReLU) -> {config.get('window')} (tanh). "
              f"{config.get('sample_rate')} Hz mono. Loss MSE + {config.get('beta')} * KL (KL averaged over "
              f"batch and latent dims).", ""]
    if summary.get("content_hash"):
        lines += [f"Weights hash (sha256): `{summary['content_hash']}`", ""]
    lines += ["## Training", "", "| setting | value |", "|---|---|"]
    for key in ("init", "epochs", "batch_size", "lr", "lr_schedule", "hop", "seed", "float16", "bf16",
                "grad_clip", "device", "threads"):
        if key in settings:
            lines.append(f"| {key} | {settings[key]} |")
    if "best_epoch" in summary:
        lines.append(f"| best epoch (lowest validation loss) | {summary['best_epoch']} |")
    if "training_seconds" in summary:
        lines.append(f"| training time | {summary['training_seconds'] / 60:.1f} min |")
    if "torch" in summary:
        lines.append(f"| torch | {summary['torch']} |")
    lines.append("")
    for split, label in (("train", "Training data"), ("validation", "Held-out data")):
        part = data.get(split)
        if not part:
            continue
        lines += [f"### {label}", "",
                  f"{part.get('files', 0)} files, {part.get('seconds', 0) / 60:.1f} min in all "
                  f"({part.get('shortest_s', 0)}-{part.get('longest_s', 0)} s each).", ""]
        if part.get("description"):
            lines += [part["description"], ""]
        if part.get("families"):
            lines += ["Families (files): " + ", ".join(f"{k} {v}" for k, v in part["families"].items()), ""]
    if summary.get("corpus"):
        lines += ["### Corpus", "", summary["corpus"], ""]
    if metrics:
        evaluated = summary.get("evaluated_on", "held-out files")
        model = metrics.get("model", {})
        lines += ["## Reconstruction", "",
                  f"Measured on the {evaluated} ({model.get('files')} files, "
                  f"{(model.get('seconds') or 0):.1f} s), reconstructed as in the paper: non-overlapping "
                  f"{config.get('window')}-sample windows, mean latent, decoded windows concatenated. "
                  f"Baselines measured in the same run: PCA with as many dimensions as the latent (fit on "
                  f"training windows) and silence. Multi-scale spectral distance = mean over FFT sizes "
                  f"2048/1024/512/256/128 of (spectral convergence + mean |log S - log S_hat|).", ""]
        names = [n for n in metrics if n != "latent"]
        lines.append("| metric | " + " | ".join(names) + " |")
        lines.append("|---|" + "---|" * len(names))
        for key, label, template in _METRIC_ROWS:
            lines.append(f"| {label} | " + " | ".join(_fmt(template, metrics[n].get(key)) for n in names) + " |")
        pca_name = next((n for n in names if n.startswith("pca")), None)
        if pca_name and model:
            gap = model["snr_db"] - metrics[pca_name]["snr_db"]
            sc_gap = model["spectral_convergence"] - metrics[pca_name]["spectral_convergence"]
            lines += ["", f"Distance from the {pca_name.upper().replace('_', '-')} baseline: "
                          f"{gap:+.2f} dB SNR, {sc_gap:+.4f} spectral convergence "
                          f"({'better' if gap > 0 else 'worse'} than a linear projection in SNR)."]
        sampled = next((n for n in names if n.startswith("model_sampled")), None)
        if sampled:
            lines += ["", f"`{sampled}`: the same windows decoded from the sampled latent "
                          f"(mu + exp(logvar / 2) * noise, what voices play with noise on), averaged "
                          f"over the seeds."]
        stats = metrics.get("latent")
        if stats:
            lines += ["", f"Latent on these windows: KL {stats['kl_per_dim']:.3f} nats per dimension "
                          f"(averaged over windows and dimensions, as the loss averages it); "
                          f"{stats['active_dims']} of {stats['latent_dims']} dimensions active (their "
                          f"mean varies across windows with a variance above "
                          f"{stats.get('active_variance', 0.01)})."]
        lines.append("")
    families = summary.get("families")
    if families:
        baseline = next((k for k in next(iter(families.values())) if k.startswith("pca")), None)
        shown = f" and {baseline.upper().replace('_', '-')} as above" if baseline else ""
        lines += ["## By family", "", "Held-out SNR (dB) of each family's notes, pooled over its files; "
                  f"same reconstruction{shown}.", "",
                  "| family | held-out notes | model | " + (f"{baseline} | model - {baseline} |" if baseline else ""),
                  "|---|---|---|" + ("---|---|" if baseline else "")]
        for family, row in sorted(families.items()):
            cells = f"| {family} | {row['files']} | {row['model']:.1f} |"
            if baseline:
                cells += f" {row[baseline]:.1f} | {row['model'] - row[baseline]:+.1f} |"
            lines.append(cells)
        lines.append("")
    history = summary.get("history")
    if history:
        lines += ["## Loss per epoch", "", "| epoch | train loss | val loss | lr | seconds |", "|---|---|---|---|---|"]
        for r in history:
            lines.append(f"| {r['epoch']} | {r['loss']:.5f} | {_fmt('{:.5f}', r.get('val_loss'))} | "
                         f"{r['lr']:.2e} | {r.get('seconds', '')} |")
        lines.append("")
    if summary.get("notes"):
        lines += ["## Notes", "", summary["notes"], ""]
    return "\n".join(lines)


def write_card(output_dir, summary: dict, *, title: str | None = None) -> Path:
    """Write ``card.md`` for a training summary into ``output_dir`` and return its path."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    path = output_dir / CARD_NAME
    with atomic_path(path) as tmp:
        tmp.write_text(card_text(summary, title=title or f"RawAudioVAE model: {output_dir.name}"), encoding="utf-8")
    return path


def _checkpoint_text(path: Path) -> str:
    checkpoint = load_checkpoint(path)
    lines = [f"# {checkpoint.path}", "", f"format: {checkpoint.origin}",
             f"weights hash (sha256): {checkpoint.content_hash}", "", "## Config", ""]
    lines += [f"- {k}: {v}" for k, v in checkpoint.config.to_dict().items()]
    training = dict(checkpoint.training)
    if training.get("metrics") or training.get("history"):
        try:               # the config shown is the one loaded, whatever the summary says
            return card_text({**training, "config": checkpoint.config.to_dict(),
                              "content_hash": checkpoint.content_hash},
                             title=f"RawAudioVAE model: {checkpoint.path}")
        except (AttributeError, KeyError, TypeError, ValueError, IndexError) as exc:
            lines += ["", f"(its training summary cannot be shown as a card: it is malformed "
                          f"({type(exc).__name__}: {str(exc)[:80]}))"]
    lines += ["", "## Training", ""]
    lines += [f"- {k}: {json.dumps(v) if isinstance(v, (dict, list)) else v}" for k, v in training.items()] \
        or ["- (the checkpoint records no training summary)"]
    return "\n".join(lines) + "\n"


def _card_text(card: Path) -> str:
    """A model card as text, or a line saying why it cannot be read (the model itself loaded)."""
    try:
        return card.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = "not UTF-8 text" if isinstance(exc, UnicodeDecodeError) else (exc.strerror or str(exc))
        return f"(its card {card} cannot be read: {reason})\n"


def cli_info(args) -> int:
    """``livelatent info [MODEL]``: print a model folder's card (the default pack if none), after
    the pack's name and version when the model is a pack."""
    target = Path(args.model) if getattr(args, "model", None) else DEFAULT_MODEL_DIR
    if not target.exists():
        raise ModelLoadError(f"no model at {target}" + ("" if getattr(args, "model", None) else
                             "; the default pack is missing: rebuild it with scripts/build_default_pack.py"))
    folder = target if target.is_dir() else target.parent
    card = folder / CARD_NAME
    if target.is_dir() or (target.name in (CHECKPOINT_NAME, PACK_WEIGHTS_NAME) and card.exists()):
        checkpoint = load_checkpoint(target)       # a folder with broken weights is an error, not a card
        info = pack_info(folder)
        if info is not None:
            same = info.weights_hash == checkpoint.content_hash
            print(f"{info} ({info.folder}); weights {checkpoint.content_hash[:12]}"
                  + ("" if same else f", NOT the {info.weights_hash[:12]} its pack.json names")
                  + (f"\n{info.changes}" if info.changes else "") + "\n")
        print(_card_text(card) if card.exists() else _checkpoint_text(target), end="")
    else:
        print(_checkpoint_text(target), end="")
    return 0
