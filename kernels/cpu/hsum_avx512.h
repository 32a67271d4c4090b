// Horizontal sums of several 16-lane accumulators at once, with exactly the bits of
// _mm512_reduce_add_ps on each: the GEMVs of linear.cpp and linear_bf16.cpp end every pass of 4
// rows of x over 5 weight rows with 20 such sums, and a row must keep the bits it gets alone (one
// _mm512_reduce_add_ps per output), whatever group it is computed in.
//
// _mm512_reduce_add_ps (GCC's avx512fintrin.h) adds the upper 256-bit half to the lower one, then
// the upper 128 bits of that to its lower 128, then lanes (0 + 2, 1 + 3), then those two. Each sum
// alone is ~9 dependent instructions, 4 of them shuffles. Here the same additions run on several
// accumulators side by side (a transpose done by the shuffles that split the halves): 16 sums take
// 30 shuffles and 15 adds instead of ~145 instructions, and every lane adds the same two values in
// the same order as the one-at-a-time sum, so the bits are equal (cpu_hsum_test checks it).
#pragma once

#include <immintrin.h>

namespace mg::cpu::hsum {

// Level 1 (256-bit halves) of a and b: [a.hi + a.lo, b.hi + b.lo] (8 lanes each).
__attribute__((target("avx512f"))) inline __m512 halves256(__m512 a, __m512 b) {
  const __m512 lo = _mm512_shuffle_f32x4(a, b, 0x44);  // 128-bit slots a0 a1 b0 b1
  const __m512 hi = _mm512_shuffle_f32x4(a, b, 0xEE);  // a2 a3 b2 b3
  return _mm512_add_ps(hi, lo);
}

// Level 2 (128-bit halves) of two level-1 results p = [X, Y], q = [Z, W] (8 lanes each):
// [X.hi + X.lo, Y.hi + Y.lo, Z.hi + Z.lo, W.hi + W.lo] (4 lanes each).
__attribute__((target("avx512f"))) inline __m512 halves128(__m512 p, __m512 q) {
  const __m512 lo = _mm512_shuffle_f32x4(p, q, 0x88);  // p0 p2 q0 q2
  const __m512 hi = _mm512_shuffle_f32x4(p, q, 0xDD);  // p1 p3 q1 q3
  return _mm512_add_ps(hi, lo);
}

// Level 3 (lanes 0 + 2 and 1 + 3 of each 128-bit slot) of two level-2 results u, v: slot c holds
// [u_c0 + u_c2, u_c1 + u_c3, v_c0 + v_c2, v_c1 + v_c3].
__attribute__((target("avx512f"))) inline __m512 pairs(__m512 u, __m512 v) {
  const __m512 first = _mm512_shuffle_ps(u, v, _MM_SHUFFLE(1, 0, 1, 0));
  const __m512 second = _mm512_shuffle_ps(u, v, _MM_SHUFFLE(3, 2, 3, 2));
  return _mm512_add_ps(first, second);
}

// Level 4 (lane 0 + lane 1 of each pair) of two level-3 results g, h: slot c holds
// [g_c0 + g_c1, g_c2 + g_c3, h_c0 + h_c1, h_c2 + h_c3].
__attribute__((target("avx512f"))) inline __m512 finish(__m512 g, __m512 h) {
  const __m512 first = _mm512_shuffle_ps(g, h, _MM_SHUFFLE(2, 0, 2, 0));
  const __m512 second = _mm512_shuffle_ps(g, h, _MM_SHUFFLE(3, 1, 3, 1));
  return _mm512_add_ps(first, second);
}

// The sums of a[4][4] in one vector: lane 4 * i + j is _mm512_reduce_add_ps(a[i][j]), so the
// 128-bit slot i holds row i's four sums in order.
__attribute__((target("avx512f"))) inline __m512 sum4x4(const __m512 a[4][4]) {
  // Column j of a through levels 1-2 puts a[i][j] in slot i of l2[j]; levels 3-4 keep the slot
  // and take the columns in order.
  __m512 l2[4];
  for (int j = 0; j < 4; ++j) l2[j] = halves128(halves256(a[0][j], a[1][j]), halves256(a[2][j], a[3][j]));
  return finish(pairs(l2[0], l2[1]), pairs(l2[2], l2[3]));
}

// The sums of a[0..3]: lane 4 * i is _mm512_reduce_add_ps(a[i]) (the other lanes repeat them).
__attribute__((target("avx512f"))) inline __m512 sum4(__m512 a0, __m512 a1, __m512 a2, __m512 a3) {
  const __m512 l2 = halves128(halves256(a0, a1), halves256(a2, a3));
  const __m512 l3 = pairs(l2, l2);
  return finish(l3, l3);
}

// out[m][r] = _mm512_reduce_add_ps(acc[m][r]), the same bits: side by side for a GEMV pass of 4
// rows of x over 4 or 5 weight rows (measured, 1 thread, 16 rows of x, K=1024: the f32 GEMV
// +8%), one at a time otherwise.
template <int M, int R>
__attribute__((target("avx512f"))) inline void reduce_add(const __m512 (&acc)[M][R], float (&out)[M][R]) {
  if constexpr (M == 4 && (R == 4 || R == 5)) {
    const __m512 first4[4][4] = {{acc[0][0], acc[0][1], acc[0][2], acc[0][3]},
                                 {acc[1][0], acc[1][1], acc[1][2], acc[1][3]},
                                 {acc[2][0], acc[2][1], acc[2][2], acc[2][3]},
                                 {acc[3][0], acc[3][1], acc[3][2], acc[3][3]}};
    alignas(64) float block[16];  // lane 4 * m + r: row m, weight row r
    _mm512_store_ps(block, sum4x4(first4));
    for (int m = 0; m < 4; ++m)
      for (int r = 0; r < 4; ++r) out[m][r] = block[4 * m + r];
    if constexpr (R == 5) {
      _mm512_store_ps(block, sum4(acc[0][4], acc[1][4], acc[2][4], acc[3][4]));  // lane 4 * m
      for (int m = 0; m < 4; ++m) out[m][4] = block[4 * m];
    }
  } else {
    for (int m = 0; m < M; ++m)
      for (int r = 0; r < R; ++r) out[m][r] = _mm512_reduce_add_ps(acc[m][r]);
  }
}

}  // namespace mg::cpu::hsum
