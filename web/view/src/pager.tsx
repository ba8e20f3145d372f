/** Previous / next over a list served in pages of `size` rows from `offset`. */
export function Pager({ offset, total, size, onOffset }: { offset: number; total: number; size: number; onOffset: (offset: number) => void }) {
  return (
    <div class="pager">
      <button type="button" disabled={offset === 0} onClick={() => onOffset(Math.max(0, offset - size))}>
        ← previous
      </button>
      <span>
        {total ? offset + 1 : 0}–{Math.min(total, offset + size)} of {total}
      </span>
      <button type="button" disabled={offset + size >= total} onClick={() => onOffset(offset + size)}>
        next →
      </button>
    </div>
  );
}
