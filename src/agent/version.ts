// Firmware version order, for refusing a same or older image: dotted numbers compare numerically,
// anything else as text ("1.10.0" > "1.9.2", "2.0.0" > "2.0.0-rc1" is not claimed: pre-releases compare as text).

export function compareVersions(a: string, b: string): number {
	const left = a.split("."), right = b.split(".");
	for (let i = 0; i < Math.max(left.length, right.length); i++) {
		const x = left[i] ?? "0", y = right[i] ?? "0";
		const numeric = /^\d{1,9}$/.test(x) && /^\d{1,9}$/.test(y);
		const order = numeric ? Number(x) - Number(y) : x < y ? -1 : x > y ? 1 : 0;
		if (order) return order < 0 ? -1 : 1;
	}
	return 0;
}

export function isNewerVersion(candidate: string, running: string): boolean {
	return compareVersions(candidate, running) > 0;
}
