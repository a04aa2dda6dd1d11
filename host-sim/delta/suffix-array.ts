/*
	The suffix array of a byte string, by prefix doubling (Manber and Myers, "Suffix arrays: a new method for
	on-line string searches", 1990) with radix sorting: after the pass for length k every suffix is ranked by
	its first 2k bytes (a suffix that ends sorts before any longer one), until all ranks differ. Each pass is
	linear, and passes stop at the longest repeat's length, so O(n log n) time in five typed arrays.
*/

/** The starts of the suffixes of `bytes` in sorted order. */
export function suffixArray(bytes: Uint8Array): Int32Array {
	const n = bytes.length;
	const order = new Int32Array(n);
	if (n === 0) return order;
	// rank: 1 + the group of a suffix's first k bytes; 0 stands for "past the end".
	let rank = new Int32Array(n), next = new Int32Array(n);
	const byKey2 = new Int32Array(n), count = new Int32Array(Math.max(257, n + 1));
	for (let i = 0; i < n; i++) count[bytes[i] + 1]++;
	for (let c = 1; c < 257; c++) count[c] += count[c - 1];
	for (let i = 0; i < n; i++) order[count[bytes[i]]++] = i;
	let groups = 0;
	for (let j = 0; j < n; j++) {
		if (j === 0 || bytes[order[j]] !== bytes[order[j - 1]]) groups++;
		rank[order[j]] = groups;
	}
	for (let k = 1; groups < n; k *= 2) {
		// Order by the second key (the rank k bytes on): suffixes shorter than k + 1 first, shortest first.
		let filled = 0;
		for (let i = n - 1; i >= n - k && i >= 0; i--) byKey2[filled++] = i;
		for (let j = 0; j < n; j++) if (order[j] >= k) byKey2[filled++] = order[j] - k;
		// Then stably by the first key.
		count.fill(0, 0, groups + 2);
		for (let i = 0; i < n; i++) count[rank[i]]++;
		for (let r = 1; r <= groups + 1; r++) count[r] += count[r - 1];
		for (let j = n - 1; j >= 0; j--) order[--count[rank[byKey2[j]]]] = byKey2[j];
		groups = 0;
		for (let j = 0; j < n; j++) {
			const at = order[j];
			if (j === 0) groups = 1;
			else {
				const before = order[j - 1];
				const second = at + k < n ? rank[at + k] : 0, secondBefore = before + k < n ? rank[before + k] : 0;
				if (rank[at] !== rank[before] || second !== secondBefore) groups++;
			}
			next[at] = groups;
		}
		[rank, next] = [next, rank];
	}
	return order;
}
