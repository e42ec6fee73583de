/**
 * `work`'s value if it settles within `ms`, else `late` (`work` goes on; its later value or failure is left to
 * it). For waits a caller must bound whatever the work does: a visibility lookup, a write to a stalled volume.
 */
export async function within<T, L>(work: Promise<T>, ms: number, late: L): Promise<T | L> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      work,
      new Promise<L>((resolve) => (timer = setTimeout(() => resolve(late), ms))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
