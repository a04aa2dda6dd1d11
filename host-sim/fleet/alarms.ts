/*
	A CloudWatch metric alarm evaluated as CloudWatch does, from the PutMetricAlarm document itself (the one
	`--target aws` writes), over PutMetricData data: only data of the alarm's namespace, metric, dimensions
	(all of them, exactly) and unit count; periods are aligned to multiples of Period since 1970; the data of
	each period reduce to one value by Statistic or ExtendedStatistic; at the end of every period the last
	EvaluationPeriods periods are looked at, and the alarm is in ALARM when DatapointsToAlarm of them breach
	by ComparisonOperator. Periods without data are missing and count neither way (TreatMissingData
	"missing"); with none at all in the window the alarm has INSUFFICIENT_DATA.
*/

import type { MetricDatum } from "../../tools/fleet/download-metric";

export type AlarmState = "OK" | "ALARM" | "INSUFFICIENT_DATA";

/** The PutMetricAlarm fields the evaluation reads. */
export interface MetricAlarm {
	AlarmName: string;
	Namespace: string;
	MetricName: string;
	Dimensions: { Name: string; Value: string }[];
	Statistic?: string;
	ExtendedStatistic?: string;
	Unit?: string;
	Period: number;
	EvaluationPeriods: number;
	DatapointsToAlarm: number;
	Threshold: number;
	ComparisonOperator: string;
	TreatMissingData?: string;
}

export interface PeriodValue {
	/** Seconds from the evaluation's start to the period's start. */
	startSeconds: number;
	/** The statistic over the period's data; undefined when the period has none. */
	value: number | undefined;
	breaching: boolean;
}

export interface AlarmEvaluation {
	state: AlarmState;
	/** When the alarm first went to ALARM, in seconds from the evaluation's start. */
	firstAlarmSeconds: number | undefined;
	transitions: { atSeconds: number; state: AlarmState }[];
	periods: PeriodValue[];
}

const comparisons: { [operator: string]: (value: number, threshold: number) => boolean } = {
	GreaterThanThreshold: (value, threshold) => value > threshold,
	GreaterThanOrEqualToThreshold: (value, threshold) => value >= threshold,
	LessThanThreshold: (value, threshold) => value < threshold,
	LessThanOrEqualToThreshold: (value, threshold) => value <= threshold,
};

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
	const match = /^p(\d{1,3}(?:\.\d+)?)$/.exec(stat);
	if (!match || Number(match[1]) > 100) throw new Error(`unknown statistic ${stat}`);
	const sorted = [...values].sort((a, b) => a - b);
	return sorted[Math.max(0, Math.ceil((Number(match[1]) / 100) * sorted.length) - 1)];
}

/** Whether a datum belongs to the alarm's metric: namespace, name, every dimension, and the unit when set. */
export function watches(alarm: MetricAlarm, namespace: string, datum: MetricDatum): boolean {
	if (namespace !== alarm.Namespace || datum.MetricName !== alarm.MetricName) return false;
	if (alarm.Unit !== undefined && datum.Unit !== alarm.Unit) return false;
	const key = (dimensions: { Name: string; Value: string }[]) => dimensions.map((each) => `${each.Name}=${each.Value}`).sort().join(",");
	return key(alarm.Dimensions) === key(datum.Dimensions);
}

/** Evaluates the alarm at the end of every period from `fromMs` until `toMs` (epoch milliseconds). */
export function evaluateAlarm(alarm: MetricAlarm, namespace: string, data: MetricDatum[], fromMs: number, toMs: number): AlarmEvaluation {
	const compare = comparisons[alarm.ComparisonOperator];
	if (!compare) throw new Error(`${alarm.AlarmName}: comparison ${alarm.ComparisonOperator} is not evaluated here`);
	const stat = alarm.ExtendedStatistic ?? alarm.Statistic ?? "Average";
	const periodMs = alarm.Period * 1000;
	const first = Math.floor(fromMs / periodMs), count = Math.max(1, Math.ceil(toMs / periodMs) - first);
	const buckets: number[][] = Array.from({ length: count }, () => []);
	for (const datum of data) {
		const index = Math.floor(datum.Timestamp / periodMs) - first;
		if (index >= 0 && index < count && watches(alarm, namespace, datum)) buckets[index].push(datum.Value);
	}
	const startSeconds = (index: number) => ((first + index) * periodMs - fromMs) / 1000;
	const periods = buckets.map((values, index): PeriodValue => {
		const value = values.length ? statistic(values, stat) : undefined;
		return { startSeconds: startSeconds(index), value, breaching: value !== undefined && compare(value, alarm.Threshold) };
	});
	let state: AlarmState = "INSUFFICIENT_DATA";
	const transitions: AlarmEvaluation["transitions"] = [];
	let firstAlarmSeconds: number | undefined;
	periods.forEach((_, index) => {
		const window = periods.slice(Math.max(0, index - alarm.EvaluationPeriods + 1), index + 1);
		const present = window.filter((period) => period.value !== undefined).length;
		const breaching = window.filter((period) => period.breaching).length;
		const next: AlarmState = !present ? "INSUFFICIENT_DATA" : breaching >= alarm.DatapointsToAlarm ? "ALARM" : "OK";
		if (next === state) return;
		state = next;
		const atSeconds = startSeconds(index + 1);
		transitions.push({ atSeconds, state });
		if (state === "ALARM" && firstAlarmSeconds === undefined) firstAlarmSeconds = atSeconds;
	});
	return { state, firstAlarmSeconds, transitions, periods };
}
