/* Element type conversions between every numeric ifd_dtype (Cast, quantization, loaders).
 *
 * Semantics follow the ONNX reference (NumPy + ml_dtypes):
 *   - float -> integer truncates toward zero; out-of-range values wrap like NumPy on x86
 *     (via a 32-bit conversion for types up to 32 bits, 64-bit for 64-bit types).
 *   - integer -> narrower integer wraps (int4/uint4/int2/uint2 keep the low bits; signed
 *     sub-byte types are stored sign-extended, one element per byte).
 *   - float -> float8 rounds to nearest even. With saturate, values beyond the largest
 *     finite value (and infinities) become +-max; without it they become inf (e5m2) or NaN.
 *   - float4e2m1 always saturates (it has neither inf nor NaN; NaN becomes 0x8).
 *   - float8e8m0 uses the round mode below; NaN and inf map to 0xFF.
 *   - anything -> bool is (x != 0). Strings are not supported. */
#ifndef IFD_DTYPE_CONVERT_H
#define IFD_DTYPE_CONVERT_H

#include "base/base.h"

typedef enum ifd_e8m0_round {
    IFD_E8M0_ROUND_UP = 0,  /* any fraction rounds to the next power of two (ONNX default) */
    IFD_E8M0_ROUND_DOWN,    /* truncate to the power of two below */
    IFD_E8M0_ROUND_NEAREST, /* to nearest, ties up */
} ifd_e8m0_round;

/* Whether a conversion between these types is implemented (numeric types only). */
bool ifd_convert_supported(ifd_dtype src_dtype, ifd_dtype dst_dtype);

/* Convert n elements from src to dst (both dense, unpacked). Fails with IFD_ERR_UNSUPPORTED
 * for strings, complex or unknown types. src and dst must not overlap. */
ifd_status ifd_convert(ifd_dtype src_dtype, const void *src, ifd_dtype dst_dtype, void *dst,
                       int64_t n, bool saturate);
ifd_status ifd_convert_ex(ifd_dtype src_dtype, const void *src, ifd_dtype dst_dtype, void *dst,
                          int64_t n, bool saturate, ifd_e8m0_round round_mode);

/* Scalar helpers for the 8-bit and 4-bit float formats (FLOAT8E4M3FN, FLOAT8E4M3FNUZ,
 * FLOAT8E5M2, FLOAT8E5M2FNUZ, FLOAT4E2M1, FLOAT8E8M0). */
float ifd_minifloat_to_f32(ifd_dtype dtype, uint8_t bits);
uint8_t ifd_f32_to_minifloat(ifd_dtype dtype, float value, bool saturate);
uint8_t ifd_f32_to_e8m0(float value, bool saturate, ifd_e8m0_round round_mode);

/* Whether dtype is one of the 8-bit or 4-bit float formats above. */
bool ifd_dtype_is_minifloat(ifd_dtype dtype);

#endif
