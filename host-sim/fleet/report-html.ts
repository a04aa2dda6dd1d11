// The report as one self-contained HTML page: no scripts, no external files; each round's executions over
// time are an inline SVG chart.

import { formatDuration, type FleetReport, type RoundReport } from "./report";
import type { StatusCounts } from "./rollout";

const series: { key: keyof StatusCounts | "NOTIFIED"; color: string }[] = [
	{ key: "NOTIFIED", color: "#888888" },
	{ key: "QUEUED", color: "#b8860b" },
	{ key: "IN_PROGRESS", color: "#1f77b4" },
	{ key: "SUCCEEDED", color: "#2ca02c" },
	{ key: "FAILED", color: "#d62728" },
	{ key: "REJECTED", color: "#9467bd" },
	{ key: "TIMED_OUT", color: "#ff7f0e" },
	{ key: "CANCELED", color: "#8c564b" },
];

function escape(text: unknown): string {
	return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function table(head: string[], rows: unknown[][]): string {
	const cells = (row: unknown[], tag: string) => `<tr>${row.map((cell) => `<${tag}>${escape(cell ?? "")}</${tag}>`).join("")}</tr>`;
	return `<table>${cells(head, "th")}${rows.map((row) => cells(row, "td")).join("")}</table>`;
}

/** A step up from 1, 2 or 5 times a power of ten that cuts `span` into about `parts`. */
function tickStep(span: number, parts: number): number {
	const rough = Math.max(span / parts, 1e-9);
	const power = 10 ** Math.floor(Math.log10(rough));
	return [1, 2, 5, 10].map((m) => m * power).find((step) => step >= rough)!;
}

function chart(round: RoundReport, boards: number): string {
	const width = 820, height = 280, left = 48, right = 150, top = 12, bottom = 36;
	const plotWidth = width - left - right, plotHeight = height - top - bottom;
	const span = Math.max(round.durationSeconds, 1);
	const x = (seconds: number) => (left + (seconds / span) * plotWidth).toFixed(1);
	const y = (count: number) => (top + plotHeight - (count / Math.max(boards, 1)) * plotHeight).toFixed(1);
	const value = (counts: StatusCounts, key: (typeof series)[number]["key"]) => key === "NOTIFIED" ? boards - counts.NOT_NOTIFIED : counts[key];
	const parts: string[] = [];
	const xStep = tickStep(span / 60, 8) * 60, yStep = Math.max(1, Math.round(tickStep(boards, 5)));
	for (let t = 0; t <= span + 1e-9; t += xStep)
		parts.push(`<line x1="${x(t)}" x2="${x(t)}" y1="${top}" y2="${top + plotHeight}" class="grid"/><text x="${x(t)}" y="${height - 18}" text-anchor="middle">${escape(formatDuration(t * 1000))}</text>`);
	for (let c = 0; c <= boards; c += yStep)
		parts.push(`<line x1="${left}" x2="${left + plotWidth}" y1="${y(c)}" y2="${y(c)}" class="grid"/><text x="${left - 6}" y="${y(c) + 4}" text-anchor="end">${c}</text>`);
	const points = round.timeline;
	series.filter(({ key }) => points.some((point) => value(point.counts, key))).forEach(({ key, color }, index) => {
		let path = `M${x(points[0].atSeconds)},${y(value(points[0].counts, key))}`;
		for (let i = 1; i < points.length; i++) path += `H${x(points[i].atSeconds)}V${y(value(points[i].counts, key))}`;
		parts.push(`<path d="${path}" stroke="${color}"/>`);
		parts.push(`<rect x="${left + plotWidth + 14}" y="${top + index * 18}" width="12" height="12" fill="${color}"/><text x="${left + plotWidth + 32}" y="${top + index * 18 + 10}">${key}</text>`);
	});
	if (round.abort)
		parts.push(`<line x1="${x(round.abort.atSeconds)}" x2="${x(round.abort.atSeconds)}" y1="${top}" y2="${top + plotHeight}" class="abort"/><text x="${x(round.abort.atSeconds)}" dx="4" y="${top + 12}" class="abort-label">abort</text>`);
	parts.push(`<text x="${left + plotWidth / 2}" y="${height - 2}" text-anchor="middle">virtual time since the job was created</text>`);
	return `<svg viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="executions over time">${parts.join("")}</svg>`;
}

function roundSection(round: RoundReport, boards: number): string {
	const counts = Object.entries(round.counts).filter(([, count]) => count);
	const download = round.downloadSeconds;
	return `<section>
<h2>Round ${round.round}: job ${escape(round.jobId)} ${escape(round.outcome)}</h2>
<p class="${round.outcome === "succeeded" ? "ok" : "bad"}">${escape(round.why)}</p>
${chart(round, boards)}
${table(["job status", ...counts.map(([status]) => status)], [[round.jobStatus, ...counts.map(([, count]) => count)]])}
${table(["download time p50", "p90", "p99", "samples", "stream retries", "re-fetched bytes", "power cuts", "virtual duration"], [[
	download ? `${download.p50} s` : "–", download ? `${download.p90} s` : "–", download ? `${download.p99} s` : "–", download?.samples ?? 0,
	round.retries, round.refetchedBytes, round.powerCuts, formatDuration(round.durationSeconds * 1000),
]])}
<details><summary>Rollout: ${round.batches.length} batches</summary>${table(["minute", "rate per minute", "notified"], round.batches.map((batch) => [batch.minute, batch.ratePerMinute, batch.notified]))}</details>
<details><summary>Executions (${round.executions.length})</summary>${table(
	["thing", "status", "notified", "ended", "download s", "board + off + link s", "result", "reason", "firmware", "retries", "re-fetched", "cuts", "boots", "link kbit/s", "faults"],
	round.executions.map((e) => [
		e.thing, e.lateStatus ? `${e.status} (reported ${e.lateStatus} late)` : e.status, formatDuration(e.notifiedAtSeconds * 1000),
		e.endedAtSeconds === undefined ? "–" : formatDuration(e.endedAtSeconds * 1000), e.downloadSeconds ?? "–",
		`${e.deviceSeconds} + ${e.offSeconds} + ${e.linkSeconds}`, e.result, e.error ?? e.reason, e.firmware,
		e.retries, e.refetchedBytes, e.cuts, e.boots, e.linkKbps, e.faults.join(", "),
	]),
)}</details>
</section>`;
}

export function reportHtml(report: FleetReport): string {
	const mib = (bytes: number) => `${(bytes / 1048576).toFixed(0)} MiB`;
	return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>xs-ota fleet: ${escape(report.config.jobId)}</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; }
table { border-collapse: collapse; margin: 8px 0; }
th, td { border: 1px solid #ccc; padding: 2px 8px; text-align: left; }
th { background: #f3f3f3; }
.ok { color: #1a7f1a; } .bad { color: #b00020; font-weight: 600; }
svg { font-size: 11px; } svg path { fill: none; stroke-width: 2; } .grid { stroke: #e4e4e4; }
.abort { stroke: #b00020; stroke-dasharray: 4 3; } .abort-label { fill: #b00020; }
</style></head><body>
<h1>xs-ota fleet: job ${escape(report.config.jobId)}, ${report.fleet.boards} simulated boards</h1>
<p class="${report.rounds.every((round) => round.outcome === "succeeded") ? "ok" : "bad"}">${escape(report.outcome)}</p>
${table(["image", "version", "size", "md5", "form", "rounds run", "wall time", "virtual time", "peak memory", "boards per second"], [[
	report.image.file, report.image.version, report.image.size, report.image.md5, report.image.form, `${report.roundsRun} of ${report.config.rounds}`,
	`${report.wall.seconds} s`, formatDuration(report.wall.virtualSeconds * 1000), mib(report.wall.peakRssBytes), report.wall.boardsPerSecond,
]])}
<h2>Alarms</h2>
${report.alarms.length ? table(["alarm", "metric", "job", "statistic", "threshold", "periods", "state", "first ALARM", "would notify"], report.alarms.map((alarm) => [
	alarm.rule.name, alarm.rule.metricName, alarm.jobId, alarm.rule.stat, `${alarm.rule.type === "upper" ? ">" : "<"} ${alarm.rule.threshold}`,
	`${alarm.rule.datapointsToAlarm} of ${alarm.rule.evaluationPeriods} × ${alarm.rule.periodSeconds} s`, alarm.evaluated ? alarm.state : "not evaluated (the simulator measures downloadTime only)",
	alarm.firstAlarmSeconds === undefined ? "–" : formatDuration(alarm.firstAlarmSeconds * 1000), alarm.firstAlarmSeconds === undefined ? "" : alarm.rule.snsTopics.join(" "),
])) : "<p>No alarms configured (ALARM_CONFIG).</p>"}
${report.rounds.map((round) => roundSection(round, report.fleet.boards)).join("\n")}
</body></html>
`;
}
