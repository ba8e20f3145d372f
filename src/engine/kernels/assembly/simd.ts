// SIMD helpers shared by kernels.ts and the generated GEMM tiles (tiles.generated.ts).

/** c + a·b per lane: fused (relaxed SIMD) in the FMA build, multiply then add otherwise. */
// @ts-ignore: decorator
@inline export function madd(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(c, f32x4.mul(a, b));
}
