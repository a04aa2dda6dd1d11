/*
	POSIX TZ strings (the form ESP-IDF's TZ takes, e.g. "CET-1CEST,M3.5.0,M10.5.0/3"), for maintenance windows:
	the server gives a local time of day plus the device's TZ string, and XS has no Intl to turn that into UTC.
	A TZ string holds only the zone's current rule, so instants from before that rule came in come out wrong.

	  std offset [dst [offset] [,start[/time],end[/time]]]
	  name    three or more letters, or <…> around three or more letters, digits, + and -: <+0530>, <-03>
	  offset  [+-]hh[:mm[:ss]], hours 0..24, added to local time to give UTC: west is positive, CET-1 is UTC+1;
	          dst's defaults to one hour ahead of std
	  start, end
	          Jn      day 1..365 of a year without Feb 29 (J60 is always March 1)
	          n       zero-based day 0..365, Feb 29 counted in leap years
	          Mm.w.d  weekday d (0 = Sunday) of week w (1..5, 5 = the last) of month m
	  time    [+-]hhh[:mm[:ss]], -167..167 hours (the POSIX 2008 extension), default 02:00; a start's time is
	          in standard time, an end's in daylight time

	Local times that do not name exactly one instant (localToUtc):
	  overlap  a time read twice as clocks go back: the earlier instant, so a window opens at its first occurrence
	  gap      a time never read as clocks go forward: as far past the jump as the time is past the gap's start,
	           so 02:30 in a 02:00→03:00 gap runs at 03:30 new time; a daily window moves, it never skips a day
*/

interface TransitionRule {
	/** "julian" is Jn, "ordinal" is n, "weekday" is Mm.w.d. */
	form: "julian" | "ordinal" | "weekday";
	/** Jn's or n's day; 0 for a weekday rule. */
	day: number;
	/** Mm.w.d's month (1..12), week (1..5, 5 = last) and weekday (0 = Sunday); 0 for a day rule. */
	month: number;
	week: number;
	weekday: number;
	/** Seconds after the day's local midnight (standard time for a start, daylight time for an end). */
	time: number;
}

interface DaylightTime {
	name: string;
	/** Seconds east of UTC, like the standard offset. */
	offset: number;
	start: TransitionRule;
	end: TransitionRule;
}

export interface TimeZone {
	standardName: string;
	/** Seconds east of UTC (local time = UTC + offset): POSIX's sign inverted, so CET-1 gives 3600. */
	standardOffset: number;
	/** Absent in a zone without daylight saving time. */
	daylight?: DaylightTime;
}

const msPerDay = 86400000;
const defaultRuleTime = 2 * 3600;
// Days in the year before each month, and after the last, in a year without Feb 29.
const monthStarts = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334, 365];

class Malformed extends Error {}

function fail(message: string): never {
	throw new Malformed(message);
}

interface Cursor {
	text: string;
	at: number;
}

function isDigit(code: number): boolean {
	return code >= 48 && code <= 57;
}

function isLetter(code: number): boolean {
	return (code | 0x20) >= 97 && (code | 0x20) <= 122;
}

function atEnd(cursor: Cursor): boolean {
	return cursor.at >= cursor.text.length;
}

/** Consumes `char` when it comes next. */
function skip(cursor: Cursor, char: string): boolean {
	if (cursor.text[cursor.at] !== char) return false;
	cursor.at++;
	return true;
}

/** A run of decimal digits, or -1 when none comes next. */
function readNumber(cursor: Cursor): number {
	const { text } = cursor;
	if (!isDigit(text.charCodeAt(cursor.at))) return -1;
	let value = 0;
	while (isDigit(text.charCodeAt(cursor.at)))
		value = value * 10 + text.charCodeAt(cursor.at++) - 48;
	return value;
}

function readName(cursor: Cursor, what: string): string {
	const { text } = cursor;
	let start = cursor.at, end: number;
	if (skip(cursor, "<")) {
		start = cursor.at;
		end = text.indexOf(">", start);
		if (end < 0) fail(`unterminated ${what} name`);
		for (let at = start; at < end; at++) {
			const code = text.charCodeAt(at);
			if (!isLetter(code) && !isDigit(code) && code !== 43 && code !== 45) fail(`bad character in ${what} name`);
		}
		cursor.at = end + 1;
	}
	else {
		while (isLetter(text.charCodeAt(cursor.at))) cursor.at++;
		end = cursor.at;
		if (end === start) fail(`missing ${what} name`);
	}
	if (end - start < 3) fail(`${what} name too short`);
	return text.slice(start, end);
}

/** [+-]h[:mm[:ss]] in seconds, with the sign as written. */
function readClock(cursor: Cursor, what: string, maxHours: number): number {
	const sign = skip(cursor, "-") ? -1 : 1;
	if (sign > 0) skip(cursor, "+");
	const hours = readNumber(cursor);
	if (hours < 0) fail(`missing ${what}`);
	let minutes = 0, seconds = 0;
	if (skip(cursor, ":")) {
		minutes = readNumber(cursor);
		if (minutes < 0) fail(`malformed ${what}`);
		if (skip(cursor, ":")) {
			seconds = readNumber(cursor);
			if (seconds < 0) fail(`malformed ${what}`);
		}
	}
	if (hours > maxHours || minutes > 59 || seconds > 59) fail(`${what} out of range`);
	return sign * (hours * 3600 + minutes * 60 + seconds);
}

function readRuleNumber(cursor: Cursor, what: string, field: string, min: number, max: number): number {
	const value = readNumber(cursor);
	if (value < 0) fail(`malformed ${what} rule`);
	if (value < min || value > max) fail(`${what} rule ${field} out of range`);
	return value;
}

function weekdayRule(month: number, week: number, weekday: number, time: number): TransitionRule {
	return { form: "weekday", day: 0, month, week, weekday, time };
}

function readRule(cursor: Cursor, what: string): TransitionRule {
	let rule: TransitionRule;
	if (skip(cursor, "J"))
		rule = { form: "julian", day: readRuleNumber(cursor, what, "day", 1, 365), month: 0, week: 0, weekday: 0, time: 0 };
	else if (skip(cursor, "M")) {
		const month = readRuleNumber(cursor, what, "month", 1, 12);
		if (!skip(cursor, ".")) fail(`malformed ${what} rule`);
		const week = readRuleNumber(cursor, what, "week", 1, 5);
		if (!skip(cursor, ".")) fail(`malformed ${what} rule`);
		rule = weekdayRule(month, week, readRuleNumber(cursor, what, "weekday", 0, 6), 0);
	}
	else rule = { form: "ordinal", day: readRuleNumber(cursor, what, "day", 0, 365), month: 0, week: 0, weekday: 0, time: 0 };
	rule.time = skip(cursor, "/") ? readClock(cursor, `${what} time`, 167) : defaultRuleTime;
	return rule;
}

function rejectTrailing(cursor: Cursor): void {
	if (!atEnd(cursor)) fail(`trailing junk "${cursor.text.slice(cursor.at)}"`);
}

function readZone(cursor: Cursor): TimeZone {
	if (atEnd(cursor)) fail("empty time zone");
	const standardName = readName(cursor, "standard");
	const standardOffset = -readClock(cursor, "standard offset", 24);
	if (atEnd(cursor)) return { standardName, standardOffset };
	if (cursor.text[cursor.at] === ",") fail("rules without a daylight name");
	if (cursor.text[cursor.at] !== "<" && !isLetter(cursor.text.charCodeAt(cursor.at))) rejectTrailing(cursor);
	const name = readName(cursor, "daylight");
	const next = cursor.text.charCodeAt(cursor.at);
	const offset = isDigit(next) || next === 43 || next === 45 ? -readClock(cursor, "daylight offset", 24) : standardOffset + 3600;
	if (atEnd(cursor)) {
		// No rules: POSIX leaves them to the implementation; glibc assumes the US rules, M3.2.0,M11.1.0.
		return { standardName, standardOffset, daylight: { name, offset, start: weekdayRule(3, 2, 0, defaultRuleTime), end: weekdayRule(11, 1, 0, defaultRuleTime) } };
	}
	if (!skip(cursor, ",")) rejectTrailing(cursor);
	const start = readRule(cursor, "start");
	if (!skip(cursor, ",")) {
		if (atEnd(cursor)) fail("missing end rule");
		rejectTrailing(cursor);
	}
	const end = readRule(cursor, "end");
	rejectTrailing(cursor);
	return { standardName, standardOffset, daylight: { name, offset, start, end } };
}

/** Parses a POSIX TZ string; returns a short lower-case error message string (naming what is wrong) when it is malformed. */
export function parseTimeZone(text: string): TimeZone | string {
	try {
		return readZone({ text, at: 0 });
	}
	catch (error) {
		if (error instanceof Malformed) return error.message;
		throw error;
	}
}

function isLeapYear(year: number): boolean {
	return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
}

/** Day number (days since 1970-01-01) of January 1 of `year`. */
function yearStart(year: number): number {
	// Leap days in [1970, year): years divisible by 4, less those by 100, plus those by 400.
	const leapDays = Math.floor((year - 1969) / 4) - Math.floor((year - 1901) / 100) + Math.floor((year - 1601) / 400);
	return 365 * (year - 1970) + leapDays;
}

function yearOfDay(day: number): number {
	let year = 1970 + Math.floor(day / 365.2425);
	while (yearStart(year) > day) year--;
	while (yearStart(year + 1) <= day) year++;
	return year;
}

/** 0 = Sunday; 1970-01-01 was a Thursday. */
function weekdayOf(day: number): number {
	return (((day + 4) % 7) + 7) % 7;
}

/** Zero-based day of `year` on which `rule` falls (365 in a year without Feb 29 is the next January 1). */
function ruleDay(rule: TransitionRule, year: number): number {
	const leap = isLeapYear(year);
	if (rule.form === "julian") return rule.day - 1 + (leap && rule.day >= 60 ? 1 : 0);
	if (rule.form === "ordinal") return rule.day;
	const leapDay = leap && rule.month > 2 ? 1 : 0;
	const first = monthStarts[rule.month - 1] + leapDay;
	const length = monthStarts[rule.month] - monthStarts[rule.month - 1] + (leap && rule.month === 2 ? 1 : 0);
	let day = first + (rule.weekday - weekdayOf(yearStart(year) + first) + 7) % 7 + (rule.week - 1) * 7;
	if (day >= first + length) day -= 7; // week 5 in a month with four of that weekday
	return day;
}

/** The UTC instant (ms) at which `rule` fires in `year`, its time read at `offset` seconds east of UTC. */
function transitionAt(rule: TransitionRule, year: number, offset: number): number {
	return (yearStart(year) + ruleDay(rule, year)) * msPerDay + (rule.time - offset) * 1000;
}

/** Milliseconds to add to a UTC instant to get local wall time at that instant. */
export function utcOffsetAt(zone: TimeZone, utcMs: number): number {
	const daylight = zone.daylight;
	if (!daylight || !Number.isFinite(utcMs)) return zone.standardOffset * 1000;
	const year = yearOfDay(Math.floor((utcMs + zone.standardOffset * 1000) / msPerDay));
	// The later of the last start and the last end decides. Rule times reach ±167 h, so a year's transition can
	// fall into the next year or the one before: look from two years back (surely past) to the next. Each
	// year's transitions come after the year before's, so the last one at or before utcMs wins.
	let lastStart = -Infinity, lastEnd = -Infinity;
	for (let y = year - 2; y <= year + 1; y++) {
		const start = transitionAt(daylight.start, y, zone.standardOffset);
		const end = transitionAt(daylight.end, y, daylight.offset);
		if (start <= utcMs) lastStart = start;
		if (end <= utcMs) lastEnd = end;
	}
	// A start at the very instant of an end (as in "…,0/0,J365/25", daylight time all year) keeps daylight time.
	return (lastStart >= lastEnd ? daylight.offset : zone.standardOffset) * 1000;
}

/**
 * The UTC instant at which local wall time reads `localMs` (local wall time expressed as ms since 1970-01-01T00:00 local).
 * In the autumn overlap (a local time that occurs twice) the earlier instant; in the spring gap (a local time that never
 * occurs) the instant the same distance after the transition as the local time is after the gap's start (i.e. 02:30 in a 02:00→03:00 gap runs at 03:30 new time), so a daily schedule never skips a day.
 */
export function localToUtc(zone: TimeZone, localMs: number): number {
	const standard = zone.standardOffset * 1000;
	const daylight = zone.daylight ? zone.daylight.offset * 1000 : standard;
	const asStandard = localMs - standard, asDaylight = localMs - daylight;
	const standardFits = utcOffsetAt(zone, asStandard) === standard;
	const daylightFits = utcOffsetAt(zone, asDaylight) === daylight;
	if (standardFits && daylightFits) return Math.min(asStandard, asDaylight);
	if (standardFits) return asStandard;
	if (daylightFits) return asDaylight;
	// In a gap: read the time at the offset from before the jump, the smaller one.
	return Math.max(asStandard, asDaylight);
}

/** Local calendar day number (days since 1970-01-01 local) of a UTC instant. */
export function localDay(zone: TimeZone, utcMs: number): number {
	return Math.floor((utcMs + utcOffsetAt(zone, utcMs)) / msPerDay);
}
