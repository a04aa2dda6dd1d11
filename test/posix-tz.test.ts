// POSIX TZ strings, checked against Node's Intl (ICU's copy of the tz database) as an independent oracle.

import { test } from "uvu";
import * as assert from "uvu/assert";
import { localDay, localToUtc, parseTimeZone, utcOffsetAt, type TimeZone } from "../src/lib/posix-tz";

const second = 1000, minute = 60 * second, hour = 60 * minute, day = 24 * hour;

type Pair = { iana: string; posix: string; since: number };

// `since`: the first year the zone has followed its current rule, so Intl and the TZ string agree from then on.
const pairs: Pair[] = [
	{ iana: "Europe/Berlin", posix: "CET-1CEST,M3.5.0,M10.5.0/3", since: 1996 },
	{ iana: "America/Los_Angeles", posix: "PST8PDT,M3.2.0,M11.1.0", since: 2007 },
	{ iana: "Australia/Sydney", posix: "AEST-10AEDT,M10.1.0,M4.1.0/3", since: 2008 },
	{ iana: "Asia/Kolkata", posix: "IST-5:30", since: 1946 },
	{ iana: "America/Sao_Paulo", posix: "<-03>3", since: 2020 },
	{ iana: "Pacific/Chatham", posix: "<+1245>-12:45<+1345>,M9.5.0/2:45,M4.1.0/3:45", since: 2008 },
	{ iana: "America/Nuuk", posix: "<-02>2<-01>,M3.5.0/-1,M10.5.0/0", since: 2024 },
	{ iana: "Europe/London", posix: "GMT0BST,M3.5.0/1,M10.5.0", since: 1996 },
];

function zoneOf(text: string): TimeZone {
	const zone = parseTimeZone(text);
	if (typeof zone === "string") throw new Error(`${text}: ${zone}`);
	return zone;
}

/** Intl's local wall time (ms since 1970-01-01 local) at a whole-second UTC instant. */
function intlWallClock(iana: string): (utcMs: number) => number {
	const format = new Intl.DateTimeFormat("en-US", {
		timeZone: iana, hourCycle: "h23", year: "numeric", month: "numeric", day: "numeric", hour: "numeric", minute: "numeric", second: "numeric",
	});
	return (utcMs) => {
		const match = /^(\d+)\/(\d+)\/(\d+), (\d+):(\d+):(\d+)$/.exec(format.format(utcMs));
		if (!match) throw new Error(`unexpected Intl format ${format.format(utcMs)}`);
		return Date.UTC(+match[3], +match[1] - 1, +match[2], +match[4], +match[5], +match[6]);
	};
}

function iso(ms: number): string {
	return new Date(ms).toISOString();
}

/** The offsets (ms) a zone moves between, the smaller first. */
function offsets(zone: TimeZone): [number, number] {
	const standard = zone.standardOffset * second, daylight = (zone.daylight?.offset ?? zone.standardOffset) * second;
	return [Math.min(standard, daylight), Math.max(standard, daylight)];
}

const firstChecked = (pair: Pair) => Date.UTC(Math.max(pair.since, 2024), 0, 1);
const lastChecked = Date.UTC(2027, 0, 1);

for (const pair of pairs) {
	test(`${pair.iana}: utcOffsetAt matches Intl every 30 minutes through 2026`, () => {
		const zone = zoneOf(pair.posix), wall = intlWallClock(pair.iana);
		let changes = 0, previous = NaN;
		for (let t = firstChecked(pair); t <= lastChecked; t += 30 * minute) {
			const offset = utcOffsetAt(zone, t);
			if (offset !== wall(t) - t) assert.unreachable(`${pair.posix} at ${iso(t)}: ${offset / minute} min, Intl ${(wall(t) - t) / minute} min`);
			if (offset !== previous && previous === previous) changes++;
			previous = offset;
		}
		assert.is(changes, zone.daylight ? 6 : 0, "two transitions a year");
	});

	test(`${pair.iana}: utcOffsetAt matches Intl daily from ${pair.since} to 2100, and to the second at each transition`, () => {
		const zone = zoneOf(pair.posix), wall = intlWallClock(pair.iana);
		const check = (t: number) => {
			if (utcOffsetAt(zone, t) !== wall(t) - t) assert.unreachable(`${pair.posix} at ${iso(t)}: ${utcOffsetAt(zone, t) / minute} min, Intl ${(wall(t) - t) / minute} min`);
		};
		let transitions = 0;
		for (let t = Date.UTC(pair.since, 0, 1, 12); t < Date.UTC(2100, 0, 1); t += day) {
			check(t);
			if (utcOffsetAt(zone, t) === utcOffsetAt(zone, t + day)) continue;
			// Narrow the change down to the second with our own function, then ask Intl about both sides.
			let before = t, after = t + day;
			while (after - before > second) {
				const middle = before + Math.floor((after - before) / 2 / second) * second;
				if (utcOffsetAt(zone, middle) === utcOffsetAt(zone, before)) before = middle;
				else after = middle;
			}
			check(before);
			check(after);
			transitions++;
		}
		if (zone.daylight) assert.ok(transitions >= 2 * (2099 - pair.since), `${transitions} transitions`);
	});

	test(`${pair.iana}: localToUtc and localDay agree with Intl for every local day 2024–2026, gaps and overlaps included`, () => {
		const zone = zoneOf(pair.posix), wall = intlWallClock(pair.iana);
		const [low, high] = offsets(zone);
		const times = [0, 30 * minute, 90 * minute, 2 * hour, 150 * minute, 165 * minute, 3 * hour, 210 * minute, 225 * minute, 12 * hour, 23 * hour, 23.5 * hour];
		let gaps = 0, overlaps = 0;
		for (let date = firstChecked(pair) / day; date < lastChecked / day; date++) {
			for (const time of times) {
				const local = date * day + time;
				const utc = localToUtc(zone, local);
				const readings = [local - high, local - low].filter((t) => wall(t) === local);
				const where = `${pair.posix} ${iso(local).slice(0, 19)} local → ${iso(utc)}`;
				if (readings.length) {
					if (utc !== readings[0]) assert.unreachable(`${where}: expected ${iso(readings[0])}`);
					if (readings.length === 2 && readings[0] !== readings[1]) overlaps++;
				}
				else {
					// A gap: the clock reads the time shifted by the jump, and the jump came at most that long ago.
					gaps++;
					if (wall(utc) !== local + high - low) assert.unreachable(`${where}: reads ${iso(wall(utc))}`);
					if (wall(utc - (high - low)) - (utc - (high - low)) !== low) assert.unreachable(`${where}: not just after a jump`);
				}
				if (localDay(zone, utc) !== Math.floor(wall(utc) / day)) assert.unreachable(`${where}: local day ${localDay(zone, utc)}`);
			}
		}
		if (zone.daylight) {
			assert.ok(gaps > 0, "some times fall in a gap");
			assert.ok(overlaps > 0, "some times fall in an overlap");
		}
	});

	test(`${pair.iana}: a daily 02:30 window for 400 days from 2026-01-01 never skips or repeats a day`, () => {
		const zone = zoneOf(pair.posix);
		const size = offsets(zone)[1] - offsets(zone)[0];
		const first = Date.UTC(2026, 0, 1) / day;
		let previous = -Infinity;
		for (let date = first; date < first + 400; date++) {
			const utc = localToUtc(zone, date * day + 150 * minute);
			assert.is(localDay(zone, utc), date, iso(utc));
			if (previous !== -Infinity) assert.ok([day - size, day, day + size].includes(utc - previous), `${iso(previous)} to ${iso(utc)}`);
			previous = utc;
		}
	});
}

test("Berlin: a time in the spring gap runs as far past the jump, a time in the autumn overlap at its first occurrence", () => {
	const berlin = zoneOf("CET-1CEST,M3.5.0,M10.5.0/3");
	assert.is(iso(localToUtc(berlin, Date.UTC(2026, 2, 29, 2, 30))), "2026-03-29T01:30:00.000Z", "02:30 in the gap is 03:30 CEST");
	assert.is(iso(localToUtc(berlin, Date.UTC(2026, 2, 29, 2))), "2026-03-29T01:00:00.000Z", "the gap's start is the jump");
	assert.is(iso(localToUtc(berlin, Date.UTC(2026, 2, 29, 3))), "2026-03-29T01:00:00.000Z", "the gap's end is the jump too");
	assert.is(iso(localToUtc(berlin, Date.UTC(2026, 2, 29, 1, 59, 59))), "2026-03-29T00:59:59.000Z");
	assert.is(iso(localToUtc(berlin, Date.UTC(2026, 9, 25, 2, 30))), "2026-10-25T00:30:00.000Z", "the CEST one, not 01:30Z");
	assert.is(iso(localToUtc(berlin, Date.UTC(2026, 9, 25, 2))), "2026-10-25T00:00:00.000Z");
	assert.is(iso(localToUtc(berlin, Date.UTC(2026, 9, 25, 3))), "2026-10-25T02:00:00.000Z", "03:00 happens once");
	assert.is(utcOffsetAt(berlin, Date.UTC(2026, 2, 29, 1) - 1), hour);
	assert.is(utcOffsetAt(berlin, Date.UTC(2026, 2, 29, 1)), 2 * hour);
	assert.is(utcOffsetAt(berlin, Date.UTC(2026, 9, 25, 1) - 1), 2 * hour);
	assert.is(utcOffsetAt(berlin, Date.UTC(2026, 9, 25, 1)), hour);
});

test("southern hemisphere and negative rule times: Sydney's daylight time spans the new year, Nuuk's gap crosses midnight", () => {
	const sydney = zoneOf("AEST-10AEDT,M10.1.0,M4.1.0/3");
	assert.is(utcOffsetAt(sydney, Date.UTC(2026, 0, 1)), 11 * hour);
	assert.is(utcOffsetAt(sydney, Date.UTC(2026, 6, 1)), 10 * hour);
	assert.is(iso(localToUtc(sydney, Date.UTC(2026, 3, 5, 2, 30))), "2026-04-04T15:30:00.000Z", "the AEDT one");
	assert.is(iso(localToUtc(sydney, Date.UTC(2026, 9, 4, 2, 30))), "2026-10-03T16:30:00.000Z", "03:30 AEDT");
	const nuuk = zoneOf("<-02>2<-01>,M3.5.0/-1,M10.5.0/0");
	// Saturday 2026-03-28 23:00 -02 jumps to Sunday 00:00 -01, so 23:30 on Saturday runs at 00:30 on Sunday.
	const gapTime = localToUtc(nuuk, Date.UTC(2026, 2, 28, 23, 30));
	assert.is(iso(gapTime), "2026-03-29T01:30:00.000Z");
	assert.is(localDay(nuuk, gapTime), Date.UTC(2026, 2, 29) / day);
	assert.is(iso(localToUtc(nuuk, Date.UTC(2026, 9, 24, 23, 30))), "2026-10-25T00:30:00.000Z", "the -01 one");
});

test("Jn never counts Feb 29, n does", () => {
	const julian = zoneOf("XST5XDT,J60,J365");
	const ordinal = zoneOf("XST5XDT,59,365");
	// 02:00 XST is 07:00 UTC; the end is 02:00 XDT, 06:00 UTC.
	for (const year of [2024, 2025]) {
		assert.is(utcOffsetAt(julian, Date.UTC(year, 2, 1, 7) - 1), -5 * hour, `J60 in ${year}`);
		assert.is(utcOffsetAt(julian, Date.UTC(year, 2, 1, 7)), -4 * hour, `J60 is March 1 in ${year}`);
		assert.is(utcOffsetAt(julian, Date.UTC(year, 11, 31, 6) - 1), -4 * hour, `J365 in ${year}`);
		assert.is(utcOffsetAt(julian, Date.UTC(year, 11, 31, 6)), -5 * hour, `J365 is Dec 31 in ${year}`);
	}
	assert.is(utcOffsetAt(ordinal, Date.UTC(2024, 1, 29, 7) - 1), -5 * hour);
	assert.is(utcOffsetAt(ordinal, Date.UTC(2024, 1, 29, 7)), -4 * hour, "59 is Feb 29 in a leap year");
	assert.is(utcOffsetAt(ordinal, Date.UTC(2025, 2, 1, 7) - 1), -5 * hour);
	assert.is(utcOffsetAt(ordinal, Date.UTC(2025, 2, 1, 7)), -4 * hour, "59 is March 1 otherwise");
	assert.is(utcOffsetAt(ordinal, Date.UTC(2024, 11, 31, 6) - 1), -4 * hour);
	assert.is(utcOffsetAt(ordinal, Date.UTC(2024, 11, 31, 6)), -5 * hour, "365 is Dec 31 in a leap year");
	assert.is(utcOffsetAt(ordinal, Date.UTC(2026, 0, 1, 6) - 1), -4 * hour);
	assert.is(utcOffsetAt(ordinal, Date.UTC(2026, 0, 1, 6)), -5 * hour, "365 is the next Jan 1 otherwise");
});

test("rule times up to 167 hours move a transition into the year before or after", () => {
	// Daylight time from Dec 31 + 100 h (Jan 4 04:00) to Dec 31 + 150 h daylight time (Jan 6 05:00 UTC), a year late.
	const late = zoneOf("AAA0BBB-1,J365/100,J365/150");
	// Standard time from Jan 1 - 120 h daylight time (Dec 26 23:00 UTC) to Dec 31 + 120 h (Jan 5 00:00), a year apart.
	const straddling = zoneOf("AAA0BBB-1,J365/120,J1/-120");
	for (const year of [2024, 2025, 2026]) {
		assert.is(utcOffsetAt(late, Date.UTC(year, 0, 2)), 0, `${year}-01-02`);
		assert.is(utcOffsetAt(late, Date.UTC(year, 0, 4, 4) - 1), 0);
		assert.is(utcOffsetAt(late, Date.UTC(year, 0, 4, 4)), hour);
		assert.is(utcOffsetAt(late, Date.UTC(year, 0, 6, 5) - 1), hour);
		assert.is(utcOffsetAt(late, Date.UTC(year, 0, 6, 5)), 0);
		assert.is(utcOffsetAt(late, Date.UTC(year, 11, 30)), 0);
		assert.is(utcOffsetAt(straddling, Date.UTC(year, 11, 26, 23) - 1), hour, `${year}-12-26`);
		assert.is(utcOffsetAt(straddling, Date.UTC(year, 11, 26, 23)), 0);
		assert.is(utcOffsetAt(straddling, Date.UTC(year, 11, 30)), 0);
		assert.is(utcOffsetAt(straddling, Date.UTC(year, 0, 2)), 0);
		assert.is(utcOffsetAt(straddling, Date.UTC(year, 0, 5) - 1), 0);
		assert.is(utcOffsetAt(straddling, Date.UTC(year, 0, 5)), hour);
		assert.is(utcOffsetAt(straddling, Date.UTC(year, 6, 1)), hour);
	}
});

test("daylight time all year: a start at the instant of the end keeps daylight time", () => {
	const zone = zoneOf("EST5EDT,0/0,J365/25");
	for (let t = Date.UTC(2023, 11, 31); t < Date.UTC(2026, 0, 2); t += 30 * minute)
		if (utcOffsetAt(zone, t) !== -4 * hour) assert.unreachable(iso(t));
	assert.is(utcOffsetAt(zone, Date.UTC(2025, 0, 1, 5)), -4 * hour, "the year's boundary");
});

test("a daylight name without rules takes the US rules, and matches America/New_York", () => {
	const zone = zoneOf("EST5EDT");
	assert.equal(zone.daylight?.start, { form: "weekday", day: 0, month: 3, week: 2, weekday: 0, time: 7200 });
	assert.equal(zone.daylight?.end, { form: "weekday", day: 0, month: 11, week: 1, weekday: 0, time: 7200 });
	const wall = intlWallClock("America/New_York");
	for (let t = Date.UTC(2024, 0, 1); t < lastChecked; t += 30 * minute)
		if (utcOffsetAt(zone, t) !== wall(t) - t) assert.unreachable(iso(t));
});

test("parses names, inverted offsets, defaults and rule times", () => {
	assert.equal(parseTimeZone("IST-5:30"), { standardName: "IST", standardOffset: 19800 });
	assert.equal(parseTimeZone("<-03>3"), { standardName: "-03", standardOffset: -10800 });
	assert.equal(parseTimeZone("<+0530>-05:30"), { standardName: "+0530", standardOffset: 19800 });
	assert.equal(parseTimeZone("UTC0"), { standardName: "UTC", standardOffset: 0 });
	assert.equal(parseTimeZone("ABC+1:02:03"), { standardName: "ABC", standardOffset: -3723 });
	assert.equal(parseTimeZone("ABC-24"), { standardName: "ABC", standardOffset: 86400 });
	const chatham = zoneOf("<+1245>-12:45<+1345>,M9.5.0/2:45,M4.1.0/3:45");
	assert.is(chatham.standardOffset, 45900);
	assert.is(chatham.daylight?.offset, 49500);
	assert.is(chatham.daylight?.start.time, 9900);
	const berlin = zoneOf("CET-1CEST,M3.5.0,M10.5.0/3");
	assert.is(berlin.daylight?.offset, 7200, "daylight defaults to an hour ahead");
	assert.is(berlin.daylight?.start.time, 7200, "rule time defaults to 02:00");
	assert.is(berlin.daylight?.end.time, 10800);
	assert.is(zoneOf("AAA3BBB,M3.5.0/-167,M10.5.0/+167:59:59").daylight?.start.time, -167 * 3600);
	assert.is(zoneOf("AAA3BBB,M3.5.0/-167,M10.5.0/+167:59:59").daylight?.end.time, 167 * 3600 + 3599);
	assert.is(zoneOf("AAA3BBB-1,J1,0").daylight?.offset, 3600, "an explicit daylight offset");
});

test("malformed strings are rejected with a message naming what is wrong", () => {
	const cases: [string, RegExp][] = [
		["", /empty/],
		["AB-1", /standard name too short/],
		["<AB>-1", /standard name too short/],
		["<>-1", /standard name too short/],
		["<+0530-5:30", /unterminated standard name/],
		["<+05 30>-5:30", /bad character in standard name/],
		["-1", /missing standard name/],
		["CET", /missing standard offset/],
		["CET-", /missing standard offset/],
		["CET25", /standard offset out of range/],
		["CET-1:60", /standard offset out of range/],
		["CET-1:00:60", /standard offset out of range/],
		["CET-1:", /malformed standard offset/],
		["CET-1CE", /daylight name too short/],
		["CET-1CEST25", /daylight offset out of range/],
		["CET-1CEST-", /missing daylight offset/],
		["CET-1,M3.5.0,M10.5.0", /rules without a daylight name/],
		["CET-1CEST,M3.5.0", /missing end rule/],
		["CET-1CEST,", /malformed start rule/],
		["CET-1CEST,M3.5.0,", /malformed end rule/],
		["CET-1CEST,X3.5.0,M10.5.0", /malformed start rule/],
		["CET-1CEST,M3.5,M10.5.0", /malformed start rule/],
		["CET-1CEST,M3..0,M10.5.0", /malformed start rule/],
		["CET-1CEST,M0.5.0,M10.5.0", /start rule month out of range/],
		["CET-1CEST,M13.5.0,M10.5.0", /start rule month out of range/],
		["CET-1CEST,M3.0.0,M10.5.0", /start rule week out of range/],
		["CET-1CEST,M3.6.0,M10.5.0", /start rule week out of range/],
		["CET-1CEST,M3.5.7,M10.5.0", /start rule weekday out of range/],
		["CET-1CEST,J0,J365", /start rule day out of range/],
		["CET-1CEST,J1,J366", /end rule day out of range/],
		["CET-1CEST,0,366", /end rule day out of range/],
		["CET-1CEST,M3.5.0/168,M10.5.0", /start time out of range/],
		["CET-1CEST,M3.5.0,M10.5.0/", /missing end time/],
		["CET-1CEST,M3.5.0,M10.5.0/3x", /trailing junk "x"/],
		["CET-1CEST,M3.5.0,M10.5.0,M11.1.0", /trailing junk ",M11.1.0"/],
		["CET-1CEST;M3.5.0,M10.5.0", /trailing junk ";/],
		["CET-1 ", /trailing junk " "/],
		["CET-1CEST-2 ", /trailing junk " "/],
	];
	for (const [text, message] of cases) {
		const result = parseTimeZone(text);
		assert.type(result, "string", JSON.stringify(text));
		assert.match(result as string, message, `${JSON.stringify(text)} gave ${JSON.stringify(result)}`);
	}
});

test("a zone without daylight time has one offset, any instant", () => {
	const kolkata = zoneOf("IST-5:30");
	assert.is(utcOffsetAt(kolkata, 0), 5.5 * hour);
	assert.is(localToUtc(kolkata, Date.UTC(2026, 5, 1, 2, 30)), Date.UTC(2026, 5, 1, 2, 30) - 5.5 * hour);
	assert.is(localDay(kolkata, Date.UTC(2026, 5, 1, 18, 30)), Date.UTC(2026, 5, 2) / day);
	const berlin = zoneOf("CET-1CEST,M3.5.0,M10.5.0/3");
	assert.is(utcOffsetAt(berlin, Date.UTC(1900, 6, 1)), 2 * hour, "the rule is applied to any year");
	assert.is(localDay(berlin, -1), 0, "1970-01-01 00:59:59.999 local");
	assert.is(localDay(berlin, -hour - 1), -1);
});

test.run();
