/*
	CloudWatch-style alarms over a metric's datapoints, as the seed's ALARM_CONFIG describes them: the datapoints
	of each period (a multiple of 60 s) reduce to one value by the statistic; at the end of every period the
	last evaluationPeriods periods are looked at, and the alarm is in ALARM when datapointsToAlarm of them breach
	(upper: value > threshold; lower: value < threshold). Periods without datapoints are missing and count
	neither way (CloudWatch's default treatment); with none at all the alarm has INSUFFICIENT_DATA.
*/

export type AlarmType = "upper" | "lower";
export type AlarmState = "OK" | "ALARM" | "INSUFFICIENT_DATA";

export interface AlarmRule {
	name: string;
	namespace: string;
	metricName: string;
	/** SampleCount, Average, Sum, Minimum, Maximum or a percentile p0 to p100. */
	stat: string;
	periodSeconds: number;
	threshold: number;
	type: AlarmType;
	evaluationPeriods: number;
	datapointsToAlarm: number;
	snsTopics: string[];
}

export interface Datapoint {
	atMs: number;
	value: number;
}

export interface PeriodValue {
	startSeconds: number;
	/** The statistic over the period's datapoints; undefined when the period has none. */
	value: number | undefined;
	breaching: boolean;
}

export interface AlarmEvaluation {
	state: AlarmState;
	/** When the alarm first went to ALARM, in seconds of the deployment. */
	firstAlarmSeconds: number | undefined;
	transitions: { atSeconds: number; state: AlarmState }[];
	periods: PeriodValue[];
}

const simpleStats = new Set(["SampleCount", "Average", "Sum", "Minimum", "Maximum"]);

/** The percentile a pNN statistic asks for, or undefined when `stat` is not one. */
function percentileOf(stat: string): number | undefined {
	const match = /^p(\d{1,3}(?:\.\d+)?)$/.exec(stat);
	const value = match ? Number(match[1]) : NaN;
	return value >= 0 && value <= 100 ? value : undefined;
}

export function validStat(stat: string): boolean {
	return simpleStats.has(stat) || percentileOf(stat) !== undefined;
}

/** The statistic of a non-empty list; percentiles by nearest rank. */
export function statistic(values: number[], stat: string): number {
	if (!values.length) throw new Error("no values");
	const sum = values.reduce((total, value) => total + value, 0);
	switch (stat) {
		case "SampleCount": return values.length;
		case "Sum": return sum;
		case "Average": return sum / values.length;
		case "Minimum": return Math.min(...values);
		case "Maximum": return Math.max(...values);
	}
	const percentile = percentileOf(stat);
	if (percentile === undefined) throw new Error(`unknown statistic ${stat}`);
	const sorted = [...values].sort((a, b) => a - b);
	return sorted[Math.max(0, Math.ceil((percentile / 100) * sorted.length) - 1)];
}

/** Evaluates the alarm at the end of every period from the deployment's start until `endMs`. */
export function evaluateAlarm(rule: AlarmRule, datapoints: Datapoint[], endMs: number): AlarmEvaluation {
	const periodMs = rule.periodSeconds * 1000;
	const count = Math.max(1, Math.ceil(endMs / periodMs));
	const buckets: number[][] = Array.from({ length: count }, () => []);
	for (const point of datapoints) buckets[Math.min(count - 1, Math.floor(point.atMs / periodMs))].push(point.value);
	const periods = buckets.map((values, index): PeriodValue => {
		const value = values.length ? statistic(values, rule.stat) : undefined;
		const breaching = value !== undefined && (rule.type === "upper" ? value > rule.threshold : value < rule.threshold);
		return { startSeconds: index * rule.periodSeconds, value, breaching };
	});
	let state: AlarmState = "INSUFFICIENT_DATA";
	const transitions: AlarmEvaluation["transitions"] = [];
	let firstAlarmSeconds: number | undefined;
	periods.forEach((_, index) => {
		const window = periods.slice(Math.max(0, index - rule.evaluationPeriods + 1), index + 1);
		const present = window.filter((period) => period.value !== undefined).length;
		const breaching = window.filter((period) => period.breaching).length;
		const next: AlarmState = !present ? "INSUFFICIENT_DATA" : breaching >= rule.datapointsToAlarm ? "ALARM" : "OK";
		if (next === state) return;
		state = next;
		const atSeconds = (index + 1) * rule.periodSeconds;
		transitions.push({ atSeconds, state });
		if (state === "ALARM" && firstAlarmSeconds === undefined) firstAlarmSeconds = atSeconds;
	});
	return { state, firstAlarmSeconds, transitions, periods };
}
