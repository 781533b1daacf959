"""A name -> class registry that user classes can join (agents, feedback models)."""

from __future__ import annotations

import difflib
import importlib
import inspect
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from feedbackgym.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps registry names to classes; ``make`` builds one with checked keyword arguments.

    A name may also be a *preset*: a class registered with default keyword arguments (see
    :meth:`register`), so that one class stands under several names that differ only in their
    defaults.

    :param kind: what the registry holds, used in messages ("agent", "feedback model").
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._classes: dict[str, type[T]] = {}
        self._defaults: dict[str, dict[str, Any]] = {}  # presets: name -> default kwargs
        self._lazy: dict[str, str] = {}

    def register_lazy(self, name: str, target: str) -> None:
        """Register ``name`` as ``"module:Class"``, imported on first use (the module then
        registers the class under ``name`` itself, e.g. with :meth:`register` as a decorator).
        Registration as data: the registry lists every name without importing any class."""
        if name in self._classes or name in self._lazy:
            raise ConfigError(f"{self.kind} name {name!r} is already registered")
        self._lazy[name] = target

    def register(
        self,
        name: str,
        cls: type[T] | None = None,
        *,
        defaults: dict[str, Any] | None = None,
        overwrite: bool = False,
    ) -> Any:
        """Register ``cls`` under ``name``; usable as a class decorator when ``cls`` is omitted.

        Without ``defaults``, ``name`` becomes the class's ``registry_name``. With ``defaults``
        (keyword arguments of ``cls``, checked here), ``name`` is a preset of ``cls``:
        :meth:`make` builds ``cls`` with ``defaults`` under the arguments it is given and sets
        ``registry_name`` to ``name`` on the object it builds, the class keeping its own. E.g.
        ``register("mistake", BPrefTeacher, defaults={"mistake": 0.1})``.
        """

        def add(klass: type[T]) -> type[T]:
            if defaults is not None:
                check_kwargs(klass, defaults, f"{self.kind} {name!r}")
            if (
                not overwrite
                and name in self._classes
                and (self._classes[name] is not klass or self._defaults.get(name) != defaults)
            ):
                raise ConfigError(f"{self.kind} name {name!r} is already registered")
            lazy = self._lazy.get(name)
            if (
                not overwrite
                and lazy is not None
                and lazy != f"{klass.__module__}:{klass.__qualname__}"
            ):
                # A built-in not imported yet: only the class its entry names takes the name.
                raise ConfigError(f"{self.kind} name {name!r} is already registered")
            self._classes[name] = klass
            self._lazy.pop(name, None)
            if defaults is None:
                self._defaults.pop(name, None)
                klass.registry_name = name  # type: ignore[attr-defined]
            else:
                self._defaults[name] = dict(defaults)
            return klass

        return add(cls) if cls is not None else add

    def get(self, name: str) -> type[T]:
        """The class registered as ``name``; an unknown name raises a one-line ConfigError."""
        if name in self._lazy:
            module, attr = self._lazy[name].split(":")
            klass = getattr(importlib.import_module(module), attr)
            self.register(name, klass, overwrite=True)
        try:
            return self._classes[name]
        except KeyError:
            close = difflib.get_close_matches(name, self.names(), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(
                f"unknown {self.kind} {name!r}{hint}; valid: {', '.join(self.names())}"
            ) from None

    def make(self, name: str, *args: Any, **kwargs: Any) -> T:
        """Build ``name`` with ``kwargs`` (over a preset's defaults); a keyword its constructor
        does not take, or a required one left out, is a one-line ConfigError (with the class's
        ``example`` of keyword arguments, when it has one)."""
        cls = self.get(name)
        preset = self._defaults.get(name)
        if preset is not None:
            given = positional_names(cls, args)
            kwargs = {**{k: v for k, v in preset.items() if k not in given}, **kwargs}
        what = f"{self.kind} {name!r}"
        check_kwargs(cls, kwargs, what)
        missing = missing_arguments(cls, args, kwargs)
        if missing:
            example = getattr(cls, "example", None)
            raise ConfigError(
                f"{what} needs {' and '.join(missing)}"
                + (f", e.g. {example}" if example else "")
                + f"; its parameters: {', '.join(parameters(cls))}"
            )
        built = cls(*args, **kwargs)
        if preset is not None:
            built.registry_name = name  # type: ignore[attr-defined]
        return built

    def defaults(self, name: str) -> dict[str, Any]:
        """The default keyword arguments ``name`` was registered with (``{}``: not a preset)."""
        self.get(name)
        return dict(self._defaults.get(name, {}))

    def names(self) -> list[str]:
        return sorted({*self._classes, *self._lazy})

    def __contains__(self, name: object) -> bool:
        return name in self._classes or name in self._lazy

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


def check_kwargs(fn: Callable[..., Any], kwargs: dict[str, Any], what: str) -> None:
    """Raise ConfigError when ``kwargs`` holds a keyword that ``fn`` does not accept."""
    params = inspect.signature(fn).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    valid = [n for n, p in params.items() if p.kind is not inspect.Parameter.VAR_POSITIONAL]
    for key in kwargs:
        if key not in valid:
            raise ConfigError(f"{what} has no parameter {key!r}; valid: {', '.join(valid)}")


def parameters(fn: Callable[..., Any]) -> list[str]:
    """Names of the parameters ``fn`` takes by keyword (``self`` and ``*args`` left out)."""
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return [n for n, p in inspect.signature(fn).parameters.items() if p.kind in kinds]


def positional_names(fn: Callable[..., Any], args: tuple[Any, ...]) -> list[str]:
    """Names of the parameters of ``fn`` that the positional ``args`` fill."""
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    names = [n for n, p in inspect.signature(fn).parameters.items() if p.kind in kinds]
    return names[: len(args)]


def missing_arguments(
    fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> list[str]:
    """Required parameters of ``fn`` that neither ``args`` nor ``kwargs`` give."""
    params = list(inspect.signature(fn).parameters.values())
    positional = positional_names(fn, args)
    return [
        p.name
        for p in params
        if p.default is inspect.Parameter.empty
        and p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
        and p.name not in kwargs
        and p.name not in positional
    ]
