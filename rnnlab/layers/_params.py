"""Argument and state-dict checks every layer shares: the dtype, seeds, flags, the live parameters,
incoming gradients and ``truncate``, and loading parameters (:func:`assign_params` copies loaded or
redrawn values into the arrays ``parameters()`` handed out, as torch does); drawing parameters
(:func:`draw_uniform`, :func:`draw_normal`) after :func:`check_param_memory` has made sure they fit
in this machine's memory.

Each raises ValueError with one line naming the bad argument, parameter or state-dict entry;
nothing is silently broadcast or cast from a non-numeric type.
"""

from __future__ import annotations

import inspect
import math
import os
import types
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from ..errors import choice_refusal, given, is_choice

DTYPES = {"float32": np.float32, "float64": np.float64}


class CallsForward:
    """``layer(x, ...)`` runs ``layer.forward(x, ...)``, a subclass's own ``forward`` included, as
    ``torch.nn.Module`` does (``__call__ = forward`` in a class body kept calling that class's).
    Each class's ``__call__`` carries its ``forward``'s signature and docstring, for ``help`` and
    an editor's call hints."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:  # what a type checker sees; each class gets its own
        return self.forward(*args, **kwargs)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)

        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            return self.forward(*args, **kwargs)

        __call__.__signature__ = inspect.signature(cls.forward)  # type: ignore[attr-defined]
        __call__.__doc__ = cls.forward.__doc__
        __call__.__qualname__ = f"{cls.__qualname__}.__call__"
        cls.__call__ = __call__


def own_function(function: types.FunctionType, qualname: str) -> types.FunctionType:
    """A copy of ``function`` whose qualified name is ``qualname``.

    Python names a wrong call (a mistyped keyword, a missing argument) after the function's code,
    ``co_qualname``: a method a class inherits, or borrows as :class:`~rnnlab.layers.JordanRNN`
    borrows ``load_state_dict``, would say "RecurrentLayer.forward() got an unexpected keyword
    argument", naming a class the user never called. The copy shares everything else (defaults,
    closure, docstring, annotations)."""
    own = types.FunctionType(function.__code__.replace(co_qualname=qualname), function.__globals__,
                             function.__name__, function.__defaults__, function.__closure__)
    own.__kwdefaults__, own.__doc__ = function.__kwdefaults__, function.__doc__
    own.__annotations__, own.__module__ = function.__annotations__, function.__module__
    own.__qualname__ = qualname
    return own


def parse_dtype(dtype: Any, none_means: str = "float32") -> np.dtype:
    """``"float32"``/``"float64"`` (or the numpy dtypes) as a dtype; ``None`` means ``none_means``."""
    try:
        name = np.dtype(none_means if dtype is None else dtype).name
    except TypeError:  # torch.float32 too, as a torch user writes it (torch itself is never imported)
        name = str(dtype).removeprefix("torch.") if type(dtype).__module__ == "torch" else repr(dtype)
    if name not in DTYPES:  # (an array's repr takes lines: it is named by its type)
        shown = repr(dtype) if isinstance(dtype, (str, np.dtype, type)) or type(dtype).__module__ == "torch" \
            else given(dtype)
        raise ValueError(f"dtype {choice_refusal(dtype, tuple(DTYPES), shown)}")
    return np.dtype(DTYPES[name])


def is_integer(value: Any) -> bool:
    """An int or a numpy integer, and not a bool (``True`` would otherwise pass as 1)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def check_finite_number(name: str, value: Any) -> float:
    """A real-valued argument (``layer_norm_eps``, ``r_max``, a gain): an int or float, numpy's
    too, not a bool, and finite; as a float."""
    try:  # math.isfinite(10**400) raises OverflowError: an int beyond float's range is not a finite float
        real = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))
        if real and math.isfinite(value):
            return float(value)
    except OverflowError:
        pass
    raise ValueError(f"{name} must be a finite number, got {given(value)}")


def check_index(name: str, value: Any, size: int, owner: str, noun: str) -> int:
    """An index argument (a layer, a sequence of the batch, a head) as an int in ``0..size-1``;
    ValueError for a non-integer (``True`` would otherwise read as 1, ``1.0`` reach numpy's
    IndexError) or one out of range, negative ones included: "head 2 out of range: the block has
    2 head(s)" for ``owner`` "the block" and ``noun`` "head"."""
    if not is_integer(value):
        raise ValueError(f"{name} must be an integer, got {given(value)}")
    if not 0 <= value < size:
        raise ValueError(f"{name} {value} out of range: {owner} has {size} {noun}(s)")
    return int(value)


def check_layer_direction(layer: Any, direction: Any, num_layers: int, num_directions: int) -> tuple[int, int]:
    """A (layer, direction) index of a network, as ints; ValueError for a non-integer (``True``
    would otherwise read as layer 1) or one out of range."""
    for name, value in (("layer", layer), ("direction", direction)):
        if not is_integer(value):
            raise ValueError(f"{name} must be an integer, got {given(value)}")
    return (check_index("layer", layer, num_layers, "the network", "layer"),
            check_index("direction", direction, num_directions, "the network", "direction"))


def array_shape(what: str, value: Any) -> tuple[int, ...]:
    """``np.shape(value)``, with a ragged nested list (which numpy cannot make an array of) said in
    one line naming ``what``, as :func:`check_array` says it, instead of numpy's error from inside;
    None, a string or a dict is no array at all (its "shape ()" would only puzzle)."""
    if value is None or isinstance(value, (str, bytes, dict)):
        raise ValueError(f"{what} must be an array, got {type(value).__name__}")
    _refuse_masked(what, value)
    try:
        return np.shape(value)
    except MemoryError:
        raise
    except Exception as exc:
        raise ValueError(f"{what} is not an array: {exc}") from None


def _refuse_masked(what: str, value: Any) -> None:
    """A masked array's mask would be dropped on the way to the kernels, which read every value
    (the NaN check skipped the masked ones): refused, with what to pass instead. So is torch's
    PackedSequence (numpy's "inhomogeneous shape" from inside it said nothing a torch user could use):
    rnnlab takes the padded array and ``lengths``."""
    if isinstance(value, np.ma.MaskedArray):
        raise ValueError(f"{what} is a masked array, whose mask rnnlab would ignore: pass .filled(value) "
                         f"(and lengths= where the layer takes them)")
    if type(value).__name__ == "PackedSequence":  # torch's, named without importing torch
        raise ValueError(f"{what} is a torch PackedSequence: pass the padded array (pad_packed_sequence) "
                         f"and lengths= where the layer takes them")


def as_array(what: str, value: Any) -> np.ndarray:
    """``np.asarray(value)``, with what numpy cannot make an array of (a ragged nested list) said in
    one line naming ``what``, and a masked array refused (:func:`_refuse_masked`): the one way every
    argument becomes an array."""
    _refuse_masked(what, value)
    try:
        return np.asarray(value)
    except MemoryError:  # (an array too large: what it is, not "not an array")
        raise
    except Exception as exc:  # a ragged list; a torch tensor that needs .numpy() on another device
        raise ValueError(f"{what} is not an array: {exc}") from None


def check_positive_int(name: str, value: Any) -> int:
    """A size or count argument (``hidden_size``, ``n_steps``): a positive integer, as an int."""
    if not is_integer(value) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {given(value)}")
    return int(value)


def check_seed(seed: Any) -> int | None:
    """``seed`` (a layer's, or ``reset_parameters``'s) as an int, or None (fresh randomness).

    Only None and non-negative integers (numpy's too) pass: a bool, a float or a string would
    otherwise be rejected by numpy with a TypeError, or (True) silently seed with 1.
    """
    if seed is None:
        return None
    if not is_integer(seed) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer or None, got {given(seed)}")
    return int(seed)


def is_one_of(value: Any, choices: Iterable[str]) -> bool:
    """:func:`rnnlab.errors.is_choice`, by the name the layers know it."""
    return is_choice(value, choices)


def refused_choice(name: str, value: Any, choices: Sequence[str]) -> ValueError:
    """The error for an option ``name`` (``nonlinearity``) that is none of ``choices``, in the CLI's and the
    labs' words: "nonlinearity must be tanh or relu, got 'Tanh' (did you mean 'tanh'?)"."""
    return ValueError(f"{name} {choice_refusal(value, choices)}")


def check_bool(name: str, value: Any) -> bool:
    """A flag argument: True or False (numpy bools too); anything else (``"no"``, 0, 1) is refused
    rather than read through ``bool()``."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {given(value)}")
    return bool(value)


def check_params(params: Mapping[str, Any], shapes: Mapping[str, tuple[int, ...]], dtype: np.dtype) -> None:
    """The live parameters (what ``parameters()`` hands out, which a caller may replace entry by
    entry) still hold exactly the names of ``shapes``, each a numpy array of that shape and ``dtype``.

    Run by ``forward`` before any kernel sees them: a few attribute comparisons per parameter (no
    pass over the values, so NaN is not looked for). Contiguity is not required: forward copies the
    parameters (C order) for its trace and the kernels read those copies.
    """
    for name, shape in shapes.items():
        value = params.get(name)
        if value is None:
            raise ValueError(f"parameter {name!r} is missing (parameters() must keep every name)")
        if not isinstance(value, np.ndarray):
            raise ValueError(f"parameter {name!r} is a {type(value).__name__}, not a numpy array")
        if value.shape != shape:
            raise ValueError(f"parameter {name!r} has shape {value.shape}, expected {shape}")
        if value.dtype != dtype:
            raise ValueError(f"parameter {name!r} has dtype {value.dtype}, but the layer is {dtype.name}"
                             f" (convert with .astype(np.{dtype.name}))")
    if len(params) != len(shapes):  # every expected name is there, so some other name is too
        extra = next(name for name in params if name not in shapes)
        raise ValueError(f"unexpected parameter {extra!r}: parameters() holds exactly the state_dict names")


def check_array(what: str, value: Any, shape: tuple[int, ...], dtype: np.dtype, owner: str = "the layer", *,
                finite: bool = True) -> np.ndarray:
    """``value`` as a C-contiguous array of exactly ``dtype`` and ``shape``, all finite (an argument
    of forward or backward; ``finite=False``: the caller checks the part it reads); ``owner`` names
    what fixes the dtype in the message."""
    is_array = isinstance(value, np.ndarray)
    value = as_array(what, value)
    if value.dtype != dtype:  # a list or scalar has no .astype: name the call that converts it
        # the argument named: dy's fix is not "np.asarray(x, ...)"; the input is forward's x
        name = "x" if what == "input" else what if what.isidentifier() else "value"
        fix = f".astype(np.{dtype.name})" if is_array else f"np.asarray({name}, dtype=np.{dtype.name})"
        raise ValueError(f"{what} has dtype {value.dtype}, but {owner} is {dtype.name} (convert with {fix})")
    if value.shape != shape:
        raise ValueError(f"{what} has shape {value.shape}, expected {shape}")
    if finite and not np.isfinite(value).all():
        raise ValueError(f"{what} contains NaN or Inf")
    value = np.ascontiguousarray(value)
    # a read-only array (a trace's record, np.broadcast_to's) is another type to numba: each kernel
    # would compile again for it, seconds on first use
    return value if value.flags.writeable else value.copy()


def foreign_trace(layer: Any, trace: Any, owner: Any = None, note: str = "") -> ValueError:
    """``backward``'s error for a trace that ``layer``'s own forward did not make (``owner``: the
    object a right trace names, ``layer`` by default). A trace is tied to that object, not to an equal
    one: one made by another object of its class (a deepcopy, or unpickled apart from its layer) is
    said to be so, since "must come from this layer's forward" reads as false for a copied pair."""
    name, owner = type(layer).__name__, layer if owner is None else owner
    made_by = getattr(trace, "_owner", None)
    if made_by is not None and made_by is not owner and type(made_by) is type(owner):
        return ValueError(f"trace comes from another {name}'s forward(): backward() needs the {name} object that "
                          f"made it (a copy of a layer is another object: copy or pickle a layer with its traces)")
    return ValueError(f"trace must come from this {name}'s own forward(){note}")


class NamedParameters:
    """torch's ``named_parameters()`` for a class whose ``parameters()`` is the mapping by name. Each
    subclass gets its own named copy (:func:`own_function`), so a wrong call names the user's class."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "named_parameters" not in cls.__dict__:
            cls.named_parameters = own_function(NamedParameters.named_parameters,  # type: ignore[method-assign]
                                                f"{cls.__qualname__}.named_parameters")

    def named_parameters(self) -> Iterator[tuple[str, np.ndarray]]:
        """``(name, live array)`` for every parameter, in state-dict order, as torch's
        ``named_parameters()``: ``parameters()`` here is already that mapping, by name."""
        return iter(self.parameters().items())  # type: ignore[attr-defined]


class IncompatibleKeys(NamedTuple):
    """What ``load_state_dict`` returns, as torch's does: the parameters the state lacked (with
    ``strict=False`` they keep their values) and the state's keys no parameter has (ignored)."""

    missing_keys: list[str]
    unexpected_keys: list[str]

    def __repr__(self) -> str:
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return f"IncompatibleKeys(missing_keys={self.missing_keys!r}, unexpected_keys={self.unexpected_keys!r})"


def check_keys(required: Iterable[str], state: Any, allowed: Iterable[str] | None = None,
               strict: bool = True, misshapen: Iterable[str] = ()) -> IncompatibleKeys:
    """``state`` is a mapping holding every ``required`` key and nothing outside ``allowed`` (default:
    the required keys); with ``strict=False`` what differs is returned, not refused. ``misshapen``
    (from :func:`shape_mismatches`) is refused either way, in the same message: every problem at once,
    as torch's ``load_state_dict`` names them, not one per attempt."""
    if not isinstance(state, Mapping):
        raise ValueError(f"state dict must be a mapping of names to arrays, got {type(state).__name__}")
    required = list(required)
    allowed = set(required if allowed is None else allowed)
    missing = [k for k in required if k not in state]
    extra = [str(k) for k in state if k not in allowed]
    keys_wrong = []
    if check_bool("strict", strict) and missing:
        keys_wrong.append(f"is missing key(s): {', '.join(missing)}")
    if strict and extra:  # both, as torch names them
        keys_wrong.append(f"{'it ' if keys_wrong else ''}has unexpected key(s): {', '.join(extra)}")
    shapes_wrong = "; ".join(misshapen)
    if keys_wrong:
        hint = (_cell_or_layer(missing, extra) or _nested(missing, extra)) if missing else ""
        raise ValueError(f"state dict {'; '.join(keys_wrong)}" + (f"; entry {shapes_wrong}" if shapes_wrong else "")
                         + hint)
    if shapes_wrong:
        raise ValueError(f"state dict entry {shapes_wrong}")
    return IncompatibleKeys(missing, extra)


def shape_mismatches(shapes: Mapping[str, tuple[int, ...]], state: Any) -> list[str]:
    """``"'name' has shape (got), expected (shape)"`` for each entry of ``state`` (a mapping; anything
    else gives none, :func:`check_keys` refuses it) whose shape is not its parameter's."""
    if not isinstance(state, Mapping):
        return []
    found = []
    for name, shape in shapes.items():
        if name in state:
            got = array_shape(f"state dict entry {name!r}", state[name])
            if got != tuple(shape):
                found.append(f"{name!r} has shape {got}, expected {tuple(shape)}")
    return found


def _cell_or_layer(missing: list[str], extra: list[str]) -> str:
    """A hint where the keys are a one-layer layer's for a cell (``weight_ih_l0`` for ``weight_ih``),
    or a cell's for a layer: the same weights under torch's other names."""
    if sorted(extra) == sorted(k + "_l0" for k in missing):
        return " (a one-layer layer's state dict: a cell's names have no _l0; load {k.removesuffix('_l0'): v})"
    if sorted(missing) == sorted(k + "_l0" for k in extra):
        return " (a cell's state dict: a layer's names end in _l0; load {k + '_l0': v})"
    return ""


def _nested(missing: list[str], extra: list[str]) -> str:
    """A hint where every missing key is there under one prefix (``rnn.weight_ih_l0``): the state dict
    of a torch module holding this layer as its ``rnn``, whose entries to pick out."""
    extra_set = set(extra)
    for key in extra:
        if key.endswith("." + missing[0]):
            prefix = key[:-len(missing[0])]
            if all(prefix + k in extra_set for k in missing):
                return (f" (the keys are under {prefix!r}, a larger module's: load "
                        f"{{k.removeprefix({prefix!r}): v for k, v in state.items() if k.startswith({prefix!r})}})")
    return ""


def load_entry(name: str, value: Any, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """A C-contiguous copy of one state-dict entry in ``dtype``: exactly ``shape``, numeric, finite."""
    value = as_array(f"state dict entry {name!r}", value)
    if value.shape != shape:
        raise ValueError(f"state dict entry {name!r} has shape {value.shape}, expected {shape}")
    if value.dtype.kind not in "fiu":
        raise ValueError(f"state dict entry {name!r} has non-numeric dtype {value.dtype}")
    return _finite_copy(f"state dict entry {name!r}", value, dtype)


def load_params(shapes: Mapping[str, tuple[int, ...]], state: Any, dtype: np.dtype, strict: bool = True,
                current: Mapping[str, Any] | None = None) -> tuple[dict[str, np.ndarray], IncompatibleKeys]:
    """Validated copies of ``state``'s entries for every name of ``shapes``, and the keys that differ.

    ``strict`` (torch's): the keys must be exactly those of ``shapes``. With ``strict=False`` a name
    the state lacks takes ``current``'s array (the live one, which :func:`assign_params` then keeps)
    and a key of no parameter is ignored; an entry of the wrong shape is refused either way.
    """
    keys = check_keys(shapes, state, strict=strict, misshapen=shape_mismatches(shapes, state))
    loaded = {name: load_entry(name, state[name], shape, dtype) if name in state else current[name]
              for name, shape in shapes.items()}
    return loaded, keys


def load_into(live: dict[str, np.ndarray], shapes: Mapping[str, tuple[int, ...]], state: Any, dtype: np.dtype,
              strict: bool = True) -> IncompatibleKeys:
    """A layer's ``load_state_dict`` where one dict holds all its parameters (``live``, what its
    ``parameters()`` hands out): :func:`load_params`, then :func:`assign_params` into ``live``."""
    loaded, keys = load_params(shapes, state, dtype, strict, live)
    assign_params(live, loaded)
    return keys


def check_float_array(what: str, value: Any, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """``value`` (an incoming gradient, e.g. a loss's float64 dL/dlogits) as a new C-contiguous array of
    ``dtype``: any float dtype is cast, an integer or other dtype refused, then exactly ``shape``, all finite."""
    value = as_array(what, value)
    if value.shape != shape:
        raise ValueError(f"{what} has shape {value.shape}, expected {shape}")
    if value.dtype.kind != "f":
        raise ValueError(f"{what} must be a float array, got dtype {value.dtype}")
    return _finite_copy(what, value, dtype)


def converted_copy(what: str, value: Any, dtype: np.dtype) -> np.ndarray:
    """``value`` (a model's input, which it converts) as a new C-contiguous array of ``dtype``: any real
    dtype (bool, integer, float) is cast, a complex one refused rather than losing its imaginary part;
    NaN, Inf and a value beyond ``dtype``'s range said as what each is (a cast first made 1e300 an Inf)."""
    value = as_array(what, value)
    if value.dtype.kind not in "biuf":
        raise ValueError(f"{what} must be a real array, got dtype {value.dtype}")
    return _finite_copy(what, value, dtype)


def _finite_copy(what: str, value: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """A C-contiguous copy of ``value`` in ``dtype``; ValueError if it holds NaN or Inf, or a finite
    value beyond ``dtype``'s range (1e300 into float32), each said as what it is."""
    if not (value.dtype.kind != "f" or np.isfinite(value).all()):
        raise ValueError(f"{what} contains NaN or Inf")
    with np.errstate(over="ignore"):  # an overflow becomes Inf: reported just below as the overflow it is
        copy = np.array(value, dtype=dtype, copy=True, order="C")
    if not np.isfinite(copy).all():
        largest = float(np.max(np.abs(value)))
        raise ValueError(f"{what} holds {largest:g}, beyond {np.dtype(dtype).name}'s range "
                         f"(largest finite {float(np.finfo(dtype).max):g})")
    return copy


def time_major(array: np.ndarray, batch_first: bool) -> np.ndarray:
    """A checked sequence in the caller's layout as time-major ``(T, B, F)``, what the kernels run
    over: for ``batch_first`` (torch's ``(B, T, F)``) a transposed view."""
    return array.transpose(1, 0, 2) if batch_first else array


def caller_layout(sequence: np.ndarray, batch_first: bool, *, copy: bool = False) -> np.ndarray:
    """A time-major ``(T, B, F)`` result in the caller's layout: for ``batch_first`` a fresh C-contiguous
    ``(B, T, F)``, never a view of ``sequence`` (a transposed view is contiguous at T = 1 or B = 1);
    time-major, ``sequence`` itself, or with ``copy`` (a trace's own record) a copy of it."""
    if batch_first:
        return sequence.transpose(1, 0, 2).copy()
    return sequence.copy() if copy else sequence


def check_sequence_gradient(dy: Any, steps: int, batch: int, width: int, dtype: np.dtype,
                            batch_first: bool, padding: np.ndarray | None = None) -> np.ndarray:
    """backward's ``dy`` (None: zeros), checked in the layout of the forward that made the trace
    (``(B, T, width)`` for ``batch_first``), as time-major ``(T, B, width)`` (a transposed view).
    ``padding`` (T, B), where the forward had lengths: the steps past each sequence's end, where dy
    is never read and may be anything (a loss over padded outputs with NaN-padded targets puts NaN
    there); only the others must be finite."""
    if dy is None:
        return np.zeros((steps, batch, width), dtype)
    shape = (batch, steps, width) if batch_first else (steps, batch, width)
    dy = time_major(check_array("dy", dy, shape, dtype, finite=padding is None), batch_first)
    if padding is not None and not np.isfinite(dy[~padding]).all():
        raise ValueError("dy contains NaN or Inf before a sequence's end (past it, dy is never read)")
    return dy


#: A cut this long or longer is full BPTT on any sequence that fits in memory; a larger one is
#: taken as this, so the kernels get a number their int64 arithmetic holds (10**20 failed to compile).
TRUNCATE_AT_MOST = 2**31 - 1


def check_truncate(truncate: Any) -> int | None:
    """``backward``'s ``truncate``: a positive number of steps, or None (full BPTT). 0 is refused
    (the spec's and the CLI's ``truncate = 0`` mean full BPTT; here that is None). A cut at or
    beyond the sequence's length is full BPTT too, however large."""
    if truncate is None:
        return None
    if not is_integer(truncate) or truncate < 1:
        raise ValueError(f"truncate must be a positive number of steps or None (full BPTT), got {truncate!r}")
    return min(int(truncate), TRUNCATE_AT_MOST)


def assign_params(live: dict[str, np.ndarray], values: Mapping[str, np.ndarray]) -> None:
    """Make ``live`` (a layer's parameter dict, what ``parameters()`` hands out) hold ``values``, in
    place as torch's ``load_state_dict`` copies into its parameters: an optimizer holding the arrays
    (or the dict) keeps updating the layer after a load or ``reset_parameters``.

    Each entry of ``live`` that is still a writable array of the new value's shape and dtype is
    overwritten; any other (replaced by the user with another shape, dtype or a read-only array, or
    sharing memory with an entry already written) is replaced by the new array. Afterwards ``live``
    holds exactly the names of ``values``, in that order. Traces hold their own copies of the
    weights, so no trace changes.
    """
    merged: dict[str, np.ndarray] = {}
    for name, value in values.items():
        current = live.get(name)
        if (isinstance(current, np.ndarray) and current.shape == value.shape and current.dtype == value.dtype
                and current.flags.writeable and not any(np.shares_memory(current, kept) for kept in merged.values())):
            np.copyto(current, value)
            value = current
        merged[name] = value
    live.clear()
    live.update(merged)


# A part of a composite's parameters: (name prefix, the dict that owns the arrays, which of its keys; None: all)
Part = tuple[str, dict, "tuple[str, ...] | None"]


class LiveParameters(MutableMapping):
    """What a model built of parts (its own arrays beside sub-layers) hands out as ``parameters()``:
    one mapping by state-dict name over the dicts that own the arrays. Reading gives the live array;
    replacing an entry replaces it in the dict that owns it, as on a single layer, so an optimizer's
    ``params[name] = params[name] - lr * g`` trains the model and ``forward`` checks the new array.

    ``parts()`` is asked at every access, in registration order: a part may come later (the echo
    state network's readout exists once fitted). Names cannot be added or removed.
    """

    def __init__(self, parts: Callable[[], Iterable[Part]]) -> None:
        self._parts = parts

    def _owner(self, name: str) -> tuple[dict, str]:
        for prefix, owner, keys in self._parts():
            key = name[len(prefix):] if isinstance(name, str) and name.startswith(prefix) else None
            if key is not None and key in owner and (keys is None or key in keys):
                return owner, key
        raise KeyError(name)

    def __getitem__(self, name: str) -> np.ndarray:
        owner, key = self._owner(name)
        return owner[key]

    def __setitem__(self, name: str, value: Any) -> None:
        try:
            owner, key = self._owner(name)
        except KeyError:
            raise KeyError(f"no parameter named {name!r} (parameters() holds exactly the state_dict names)") from None
        owner[key] = value

    def __delitem__(self, name: str) -> None:
        raise TypeError(f"parameters cannot be removed (tried {name!r}): replace one with an array of its shape")

    def __iter__(self) -> Iterator[str]:
        for prefix, owner, keys in self._parts():
            yield from (prefix + key for key in owner if keys is None or key in keys)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __repr__(self) -> str:
        return "LiveParameters({" + ", ".join(f"{name!r}: {np.shape(value)}" for name, value in self.items()) + "})"


# ---------------------------------------------------------------------------- sizes
def physical_memory() -> int:
    """This machine's memory in bytes (8 GiB where the OS does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return 8 * 2**30


def format_bytes(n: int) -> str:
    """A size for a message: "512 bytes", "69 KiB", "12 MiB", "3.5 GiB", "2.8 PiB", "1.0 EiB", "1.7e7 EiB"."""
    if n < 2**10:
        return f"{n} bytes"
    if n < 2**20:
        return f"{n / 2**10:.0f} KiB"
    if n < 2**28:
        return f"{n / 2**20:.0f} MiB"
    for unit, scale in (("GiB", 2**30), ("TiB", 2**40), ("PiB", 2**50), ("EiB", 2**60)):
        if n < 2**10 * scale:
            return f"{n / scale:.1f} {unit}"
    mantissa, _, exponent = f"{n / 2**60:.1e}".partition("e")  # "1.5e7 EiB": not "17179869184.1 PiB"
    return f"{mantissa}e{int(exponent)} EiB"


class TooLargeForMemory(ValueError):
    """A layer's parameters would not fit in this machine's memory (:func:`check_param_memory`)."""


def check_param_memory(owner: str, shapes: Iterable[tuple[int, ...]], dtype: Any, fix: str = "sizes", *,
                       what: str = "parameters", each_layer: Iterable[tuple[int, ...]] = (), layers: int = 0) -> None:
    """TooLargeForMemory (a ValueError), before anything is allocated, if parameters of ``shapes`` in
    ``dtype`` would take more than half this machine's memory (the other half holds a forward pass's
    copy of them, as :meth:`rnnlab.spec.Spec.check_memory` leaves half for the rest); ``owner`` names
    the layer as it was called, ``fix`` what to make smaller, ``what`` the arrays when they are not
    (only) parameters (a positional-encoding table). ``each_layer``'s shapes come ``layers`` times
    more: two billion layers are counted, not listed (a list of their shapes was the MemoryError)."""
    count = sum(math.prod(shape) for shape in shapes) + layers * sum(math.prod(shape) for shape in each_layer)
    need, have = count * np.dtype(dtype).itemsize, physical_memory()
    if need > have // 2:
        raise TooLargeForMemory(f"{owner}: its {count:,} {what} need about {format_bytes(need)} "
                         f"({np.dtype(dtype).name}), more than half of this machine's {format_bytes(have)}; "
                         f"make {fix} smaller")


def check_forward_memory(owner: str, count: int, dtype: Any, fix: str) -> None:
    """TooLargeForMemory (a ValueError), before the kernels allocate, if a forward pass would record
    ``count`` values of ``dtype``, more than this machine's whole memory: the allocation inside a
    compiled kernel failed with numba's "Allocation failed (probably too large)", naming neither the
    layer nor the size. ``owner`` names the call (``"LSTM.forward"``), ``fix`` what to make smaller."""
    need, have = count * np.dtype(dtype).itemsize, physical_memory()
    if need > have:
        raise TooLargeForMemory(f"{owner}: this input's trace would hold {count:,} values, about {format_bytes(need)} "
                                f"({np.dtype(dtype).name}), more than this machine's {format_bytes(have)}; make {fix} "
                                "smaller")


#: Elements drawn at a time by :func:`draw_uniform` and :func:`draw_normal` (8 MiB of float64).
DRAW_CHUNK = 2**20


def _draw_chunked(draw, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """A ``dtype`` array of ``shape`` filled in order by ``draw(n)`` (n float64 values), at most
    :data:`DRAW_CHUNK` at a time: each chunk is rounded into the array as it comes, so the whole
    float64 array never exists."""
    out = np.empty(shape, dtype)
    flat = out.reshape(-1)
    for start in range(0, flat.size, DRAW_CHUNK):
        stop = min(start + DRAW_CHUNK, flat.size)
        flat[start:stop] = draw(stop - start)
    return out


def draw_uniform(rng: np.random.Generator, low: float, high: float, shape: tuple[int, ...],
                 dtype: Any) -> np.ndarray:
    """``rng.uniform(low, high, shape).astype(dtype)`` bit for bit, and the generator left in the
    same state, without the whole float64 array: drawn in chunks (numpy's uniform takes one double
    of the stream per element, in order) and rounded into the ``dtype`` array as they come."""
    return _draw_chunked(lambda n: rng.uniform(low, high, n), shape, dtype)


def draw_normal(rng: np.random.Generator, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """``rng.standard_normal(shape).astype(dtype)`` bit for bit (``torch.nn.Embedding``'s N(0, 1)
    init), and the generator left in the same state, drawn in chunks as :func:`draw_uniform`: a
    Generator's normals come one after another from the stream (ziggurat, nothing cached between
    calls), so the chunks continue one another exactly."""
    return _draw_chunked(rng.standard_normal, shape, dtype)
