/**
 * The embedding layout: which rows of a token e_i hold what. Every constructor reads its row
 * indices from here and nowhere else.
 *
 * The paper's token is e_i = [x ; y_i ; r_i ; 0...] (§2.2.2), extended in App. E with a constant-1
 * feature (Lemma E.2 pre-processing), one-hot positional encodings (Lemmas E.3-E.4) and, for PL,
 * an accumulator row plus a working copy of y (Thm 3.3, Eq. 34). Here:
 *
 *   x        n_x   the query (the same in every token; ||x|| = 1)
 *   y        n_y   the response. Updated in place by every gradient step: after K steps it holds
 *                  y_i - (W_K - W_0) x. In PL this is the paper's accumulator row "y_i + G_i^k".
 *   r        1     the reward (critic); never written, so the ranking survives any number of steps
 *   one      1     the constant 1 appended by the bias-only FFN (Lemma E.2 pre-processing)
 *   pe       N     one-hot position p_i (given with the input, as Lemma E.3 assumes)
 *   then, for each gradient step s = 1..K, fresh scratch rows (no row is ever "reset", because a
 *   residual network can only add: a row pushed by -gamma could not be restored exactly):
 *   yw[s]    n_y   working copy of y at the start of step s (Thm 3.3's duplicated y)
 *   far[s]   1     one extra coordinate of the working copy, 0 until Lemma E.7's masking FFN pushes
 *                  the selected token away along it (W x has 0 there, so ||Wx - yw||^2 grows by
 *                  exactly push^2 and the rest of the working copy stays exact)
 *   rw[s]    1     working reward: Lemma E.6 subtracts r+ from it each block, Lemma E.7 pushes it down
 *   sc[s]    1     approximate variant only: the FFN feature -||W x - yw||^2 (Lemma E.5, first way)
 *   spread[s] N*n_y  slot l of token j holds yw_j if l = j else 0 (the matrix X_p of Eq. 50)
 *   bcast[s]  N*n_y  slot l of every token holds yw_l (Lemma E.4's broadcast, Eq. 51). Causal
 *                  variant: the causal mean, slot l of token i holds yw_l / i for l <= i
 *   causal variant (App. F.2) only, size 0 otherwise:
 *   bsum[s]   N*n_y  i * bcast: slot l of token i holds yw_l for l <= i (the prefix's responses)
 *   m[s]      N    masked PE: the sum of the one-hot positions token i has already ranked
 *   pplus[s]  N    scratch: Lemma F.1's position p+ of the current top, consumed by the next FFN
 */
export interface Rows {
  start: number;
  size: number;
}

export interface StepRows {
  yw: Rows;
  far: number;
  rw: number;
  sc: number;
  spread: Rows;
  bcast: Rows;
  bsum: Rows;
  m: Rows;
  pplus: Rows;
}

export class Layout {
  readonly nx: number;
  readonly ny: number;
  /** Number of tokens N (context responses plus the test token). */
  readonly n: number;
  /** Number of gradient steps the scratch rows are laid out for. */
  readonly steps: number;
  readonly x: Rows;
  readonly y: Rows;
  readonly r: number;
  readonly one: number;
  readonly pe: Rows;
  readonly step: StepRows[];
  /** Rows for the causal (online-PL) construction of App. F.2. */
  readonly causal: boolean;
  /** Embedding dimension. */
  readonly dim: number;

  constructor(nx: number, ny: number, n: number, steps = 1, causal = false) {
    this.causal = causal;
    this.nx = nx;
    this.ny = ny;
    this.n = n;
    this.steps = steps;
    let at = 0;
    const take = (size: number): Rows => {
      const rows = { start: at, size };
      at += size;
      return rows;
    };
    this.x = take(nx);
    this.y = take(ny);
    this.r = take(1).start;
    this.one = take(1).start;
    this.pe = take(n);
    this.step = [];
    for (let s = 0; s < steps; s++) {
      this.step.push({
        yw: take(ny),
        far: take(1).start,
        rw: take(1).start,
        sc: take(1).start,
        spread: take(n * ny),
        bcast: take(n * ny),
        bsum: take(causal ? n * ny : 0),
        m: take(causal ? n : 0),
        pplus: take(causal ? n : 0),
      });
    }
    this.dim = at;
  }

  /** Row of component c of slot l in a spread or bcast block. */
  slot(block: Rows, l: number, c: number): number {
    return block.start + l * this.ny + c;
  }

  /** The paper's input token e_i = [x ; y_i ; r_i ; 0 ...] plus its one-hot position p_i. */
  embed(x: number[], ys: number[][], r: number[]): Float64Array[] {
    return ys.map((yi, i) => {
      const e = new Float64Array(this.dim);
      e.set(x, this.x.start);
      e.set(yi, this.y.start);
      e[this.r] = r[i]!;
      e[this.pe.start + i] = 1;
      return e;
    });
  }

  /** Reads rows `rows` of every token, e.g. the updated responses. */
  read(X: Float64Array[], rows: Rows): number[][] {
    return X.map((e) => Array.from(e.subarray(rows.start, rows.start + rows.size)));
  }
}
