"""Scalar activations for the kernels, specialised by dtype at compile time.

float64 uses libm (``math.tanh``, ``math.exp``): exact, for the reference-grade paths.
float32 tanh vectorises (llvmlite has no SVML: libm calls stay scalar, ~18 ns each). Below
|x| = 0.6 it is a clamped rational approximation (Eigen's ``generic_fast_tanh_float``), within 4
ulp; from 0.6 it is 1 - 2 / (e^2|x| + 1) with the vectorised exp below, within 1.3 ulp and
correctly rounded from |x| = 2 on. There the approximation's own 4 ulp (2.4e-7 absolute) were most of
1 - tanh^2 for a nearly saturated unit: its gradient was up to 63% off at |x| = 7-7.9 (torch's 9%,
now the same). Where float32's own tanh is exactly +-1 (|x| >= 9.0109), so is this one: a saturated
unit passes no gradient (1 - tanh^2 = 0, as in torch), where the approximation's 0.99999976 left
4.8e-7, which large inputs multiplied into visible errors in dW. Between the approximation's range
(7.905) and there, it is float32's correctly rounded tanh: five values, each from a threshold.

float32 sigmoid is 1 / (1 + exp(-x)) with a vectorisable exp (Cephes' ``expf``: Cody-Waite range
reduction, a degree-5 polynomial, 2^n written into the exponent bits): within 1.5e-7 relative of
the exact value everywhere it is a normal float32, as torch's. It was 0.5 + 0.5 * tanh(x / 2),
whose cancellation lost the negative tail: stuck at 1.2e-7 from x = -15.8, exactly 0 from -18,
so a gate shut that hard passed no gradient at all (torch's passes 1e-8 at x = -18).
"""

from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic, overload

from ._jit import HELPER_OPTIONS, helper

# Numerator (odd) and denominator (even) coefficients; constants are float32 so nothing promotes.
_A1 = np.float32(4.89352455891786e-03)
_A3 = np.float32(6.37261928875436e-04)
_A5 = np.float32(1.48572235717979e-05)
_A7 = np.float32(5.12229709037114e-08)
_A9 = np.float32(-8.60467152213735e-11)
_A11 = np.float32(2.00018790482477e-13)
_A13 = np.float32(-2.76076847742355e-16)
_B0 = np.float32(4.89352518554385e-03)
_B2 = np.float32(2.26843463243900e-03)
_B4 = np.float32(1.18534705686654e-04)
_B6 = np.float32(1.19825839466702e-06)
_CLAMP = np.float32(7.90531110763549805)  # the approximation's range: beyond it, its value there (1 - 2.4e-7)
_SATURATED = np.float32(9.010914)  # the least float32 x whose tanh, correctly rounded to float32, is 1.0
# Past the clamp, up to saturation, float32's tanh takes five values, 1 - k * 2^-24 for k = 5..1:
# each from the least float32 x where it is the correctly rounded tanh (1 - tanh x = 2 / (e^2x + 1));
# 1 - 5 * 2^-24 from below the clamp (7.865). Scalars, not tuples: the CUDA twin
# (kernels.cuda._common) compiles this same function.
_TAIL5 = np.float32(1.0 - 5 * 2.0**-24)
_TAIL4_FROM, _TAIL4 = np.float32(7.912301), np.float32(1.0 - 4 * 2.0**-24)
_TAIL3_FROM, _TAIL3 = np.float32(8.037959), np.float32(1.0 - 3 * 2.0**-24)
_TAIL2_FROM, _TAIL2 = np.float32(8.206195), np.float32(1.0 - 2 * 2.0**-24)
_TAIL1_FROM, _TAIL1 = np.float32(8.461608), np.float32(1.0 - 2.0**-24)
#: From here up to the clamp tanh is 1 - 2 / (e^2x + 1) (e^2x from exp of at most 18: past the
#: clamp the tail's values hold); below it the rational approximation, which has no cancellation.
_EXP_FORM_FROM = np.float32(0.6)
_EXP_ARG = np.float32(18.0)
_HALF32 = np.float32(0.5)
_ONE32 = np.float32(1.0)
_TWO32 = np.float32(2.0)
_ZERO32 = np.float32(0.0)
# expf: ln 2 split in two (its high part exact in few bits), the polynomial of exp(r) - 1 - r on
# |r| <= ln(2) / 2, and the arguments kept where 2^n is a normal float32
_LOG2E = np.float32(1.44269504088896341)
_LN2_HI = np.float32(0.693359375)
_LN2_LO = np.float32(-2.12194440e-4)
_E0 = np.float32(1.9875691500e-4)
_E1 = np.float32(1.3981999507e-3)
_E2 = np.float32(8.3334519073e-3)
_E3 = np.float32(4.1665795894e-2)
_E4 = np.float32(1.6666665459e-1)
_E5 = np.float32(5.0000001201e-1)
_EXP_MIN = np.float32(-87.0)
_EXP_MAX = np.float32(88.0)
#: ln of float32's least normal number: below it the sigmoid is a subnormal, written 0 here (the
#: kernels run with subnormals flushed); torch's CPU sigmoid gives a few down to about -88.7
#: (sigmoid(-88) = 6.05e-39, sigmoid(-89) = 0), an absolute difference below 1.2e-38
_SIGMOID_ZERO = np.float32(-87.33654)


def tanh(x):
    """tanh(x); a rational approximation and the exp form in float32, libm in float64."""
    return math.tanh(x)


def sigmoid(x):
    """The logistic function 1 / (1 + exp(-x))."""
    return 1.0 / (1.0 + math.exp(-x))


@helper
def _tanh_f32_rational(x):
    a = abs(x)
    saturated = a >= _SATURATED  # (False for NaN, which stays NaN)
    sign = math.copysign(_ONE32, x)
    # the tail past the clamp, correctly rounded (the approximation's 1 - 4 * 2^-24 everywhere
    # there left 1 - tanh^2 up to 4x torch's at |x| = 8.5-9)
    tail = (_TAIL1 if a >= _TAIL1_FROM else _TAIL2 if a >= _TAIL2_FROM else _TAIL3 if a >= _TAIL3_FROM
            else _TAIL4 if a >= _TAIL4_FROM else _TAIL5)
    x = min(max(x, -_CLAMP), _CLAMP)
    x2 = x * x
    p = x2 * _A13 + _A11
    p = x2 * p + _A9
    p = x2 * p + _A7
    p = x2 * p + _A5
    p = x2 * p + _A3
    p = x2 * p + _A1
    p = x * p
    q = x2 * _B6 + _B4
    q = x2 * q + _B2
    q = x2 * q + _B0
    return sign if saturated else sign * tail if a >= _CLAMP else p / q


@intrinsic
def _float32_from_bits(typingctx, bits):
    """The float32 whose IEEE bits are the int32 ``bits`` (a bitcast: it vectorises, ldexp does not)."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())
    return types.float32(types.int32), codegen


@helper(fastmath={"contract"})  # no reassociation: it would fold the two parts of ln 2 back into one
def _exp_f32(x):
    x = min(max(x, _EXP_MIN), _EXP_MAX)
    n = np.floor(x * _LOG2E + _HALF32)  # x = n ln 2 + r
    r = x - n * _LN2_HI - n * _LN2_LO
    p = r * _E0 + _E1
    p = r * p + _E2
    p = r * p + _E3
    p = r * p + _E4
    p = r * p + _E5
    return (r * r * p + r + _ONE32) * _float32_from_bits((np.int32(n) + np.int32(127)) << np.int32(23))


@helper(fastmath={"contract"})
def _sigmoid_f32(x):
    s = _ONE32 / (_ONE32 + _exp_f32(-x))
    return _ZERO32 if x < _SIGMOID_ZERO else s  # below float32's normal range: 0, as torch's (NaN stays NaN)


def _sigmoid_f64(x):
    # written to avoid exp overflow warnings for large negative x
    if x >= 0.0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def _is_f32(x):
    return isinstance(x, types.Float) and x.bitwidth == 32


@helper
def _tanh_f32_from(x, rational, e):
    """float32 tanh(x) from ``rational = _tanh_f32_rational(x)`` and ``e = exp(min(2 |x|, 18))``:
    the CPU's and the GPU's each with its own exp (a vectorised polynomial, libdevice's)."""
    # 1 - 2 / (e^2a + 1) from 0.6 to the clamp: within 1.3 ulp, correctly rounded from 2 (the
    # approximation's up to 4 ulp there made 1 - tanh^2 up to 7x torch's error near the clamp)
    a = abs(x)
    exp_form = math.copysign(_ONE32 - _TWO32 / (e + _ONE32), x)
    return exp_form if _EXP_FORM_FROM <= a < _CLAMP else rational  # NaN: the rational's, NaN


@helper(inline="always")  # numba's inlining: past LLVM's inline threshold, a call each element, nothing vectorised
def _tanh_f32(x):
    return _tanh_f32_from(x, _tanh_f32_rational(x), _exp_f32(min(_TWO32 * abs(x), _EXP_ARG)))


@overload(tanh, jit_options=HELPER_OPTIONS, inline="always")
def _tanh_overload(x):
    if _is_f32(x):
        return _tanh_f32
    return lambda x: math.tanh(x)


@overload(sigmoid, jit_options=HELPER_OPTIONS)
def _sigmoid_overload(x):
    if _is_f32(x):
        return _sigmoid_f32
    return _sigmoid_f64
