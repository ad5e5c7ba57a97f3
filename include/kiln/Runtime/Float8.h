//===- Float8.h - fp8 e4m3 encoding and decoding ----------------*- C++ -*-===//
//
// The fp8 e4m3 format of torch.float8_e4m3fn and CUDA's __nv_fp8_e4m3
// (CUDA_R_8F_E4M3): 1 sign, 4 exponent (bias 7) and 3 mantissa bits, no
// infinities, one NaN pattern per sign (S.1111.111), largest finite 448,
// smallest normal 2^-6, subnormals in steps of 2^-9. The compiler encodes
// weights with it, and the same algorithm, emitted as arith ops, encodes
// activations in generated kernels (lib/Conversion/KilnToLinalg); the
// runtime tests' fake cuBLASLt decodes with it. Header-only, no
// dependencies.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_RUNTIME_FLOAT8_H
#define KILN_RUNTIME_FLOAT8_H

#include <cstdint>
#include <cstring>

namespace kiln {

/// Bits of the largest finite e4m3 value, 448, as an f32.
constexpr uint32_t kE4M3MaxAsF32Bits = 0x43E00000u;

/// `value` as e4m3: clamped to [-448, 448] (infinities too), then rounded
/// to the nearest e4m3 value, ties to even; NaN gives NaN (0x7F, with the
/// sign). For |value| <= 448 this is torch's float -> float8_e4m3fn cast
/// bit for bit (c10's fp8e4m3fn_from_fp32_value), which gives NaN rather
/// than 448 from 464 up; kiln saturates, as fp8 recipes clamp before the
/// cast.
inline uint8_t encodeE4M3(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, 4);
  uint32_t sign = bits & 0x80000000u;
  uint32_t magnitude = bits ^ sign;
  uint8_t code;
  if (magnitude > 0x7F800000u) {
    code = 0x7F;
  } else {
    if (magnitude > kE4M3MaxAsF32Bits)
      magnitude = kE4M3MaxAsF32Bits;
    if (magnitude < (121u << 23)) {
      // Below 2^-6: adding 2^14 (141 << 23) leaves the subnormal's code,
      // rounded to nearest even by the f32 addition, in the low bits.
      constexpr uint32_t denormMask = 141u << 23;
      float m, d;
      std::memcpy(&m, &magnitude, 4);
      std::memcpy(&d, &denormMask, 4);
      float sum = m + d;
      uint32_t sumBits;
      std::memcpy(&sumBits, &sum, 4);
      code = static_cast<uint8_t>(sumBits - denormMask);
    } else {
      // Rebias the exponent (127 -> 7) and round the 20 dropped mantissa
      // bits to nearest even.
      uint32_t mantissaOdd = (magnitude >> 20) & 1u;
      magnitude += ((uint32_t)(7 - 127) << 23) + 0x7FFFFu + mantissaOdd;
      code = static_cast<uint8_t>(magnitude >> 20);
    }
  }
  return static_cast<uint8_t>(code | (sign >> 24));
}

/// The value of e4m3 `code` (exact in f32).
inline float decodeE4M3(uint8_t code) {
  uint32_t sign = static_cast<uint32_t>(code & 0x80u) << 24;
  uint32_t exponent = (code >> 3) & 0xFu, mantissa = code & 7u;
  uint32_t bits;
  if ((code & 0x7Fu) == 0x7Fu) {
    bits = 0x7FC00000u;
  } else if (exponent == 0) {
    float magnitude = static_cast<float>(mantissa) * (1.0f / 512.0f);
    std::memcpy(&bits, &magnitude, 4);
  } else {
    bits = ((exponent + 120u) << 23) | (mantissa << 20);
  }
  bits |= sign;
  float value;
  std::memcpy(&value, &bits, 4);
  return value;
}

} // namespace kiln

#endif // KILN_RUNTIME_FLOAT8_H
