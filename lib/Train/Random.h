//===- Random.h - Portable random draws for libkiln_train -------*- C++ -*-===//
//
// Draws that give the same numbers with every standard library, so token
// sampling and tokenizer training are reproducible across machines
// (std::uniform_int_distribution is implementation-defined). Private to the
// library.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_LIB_TRAIN_RANDOM_H
#define KILN_LIB_TRAIN_RANDOM_H

#include <cstdint>
#include <random>

namespace kiln::train::detail {

/// A uniform integer in [0, bound) from `rng`, by rejection.
inline uint64_t uniformBelow(std::mt19937_64 &rng, uint64_t bound) {
  uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
  uint64_t value;
  do {
    value = rng();
  } while (value >= limit);
  return value % bound;
}

/// A uniform double in [0, 1) from the top 53 bits of one draw.
inline double uniformUnit(std::mt19937_64 &rng) {
  return static_cast<double>(rng() >> 11) * 0x1.0p-53;
}

} // namespace kiln::train::detail

#endif // KILN_LIB_TRAIN_RANDOM_H
