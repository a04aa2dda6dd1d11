/*
	The downloadTime metric, defined once for AWS and for the rehearsal:
	  the device reports statusDetails.downloadTime (seconds, a string) with its terminal status;
	  AWS IoT publishes a job execution event on $aws/events/jobExecution/<jobId>/<operation> (deploy.sh turns
	  the JOB_EXECUTION events on); the monitor stack's topic rule hands every such event to a Lambda function,
	  whose code is executionDatum below (its source text is put into the template), and which puts the datum
	  into CloudWatch: namespace IoT:OTA:JobExecution, metric downloadTime, dimension jobId, unit Seconds, at
	  the event's time;
	  the rehearsal turns the same events of its emulator into data with the same function.
	The alarms (aws-documents.ts) watch that metric with that dimension; host-sim/fleet/alarms.ts evaluates
	the very PutMetricAlarm documents over those data.
*/

import { createHash } from "node:crypto";

export const downloadTimeMetric = { namespace: "IoT:OTA:JobExecution", metricName: "downloadTime", dimension: "jobId", unit: "Seconds" } as const;

/** A job execution event, as AWS IoT publishes it (the fields the metric reads). */
export interface JobExecutionEvent {
	eventType: string;
	jobId: string;
	thingArn?: string;
	status: string;
	/** Epoch seconds (or milliseconds). */
	timestamp: number;
	statusDetails?: { [key: string]: unknown };
}

/** A PutMetricData MetricDatum. */
export interface MetricDatum {
	MetricName: string;
	Dimensions: { Name: string; Value: string }[];
	/** Milliseconds since 1970. */
	Timestamp: number;
	Value: number;
	Unit: string;
}

/**
	The datum an event yields: a SUCCEEDED or FAILED execution whose statusDetails carry a downloadTime.
	Self-contained (no outer names): its source text is the Lambda function's, so it must run as plain JS.
*/
export function executionDatum(event: JobExecutionEvent, metric: typeof downloadTimeMetric): MetricDatum | undefined {
	if (!event || event.eventType !== "JOB_EXECUTION" || (event.status !== "SUCCEEDED" && event.status !== "FAILED")) return undefined;
	const text = event.statusDetails && event.statusDetails.downloadTime;
	if (typeof text !== "string" || !/^\d{1,9}(\.\d{1,3})?$/.test(text) || typeof event.jobId !== "string") return undefined;
	const timestamp = event.timestamp > 1e12 ? event.timestamp : event.timestamp * 1000;
	return { MetricName: metric.metricName, Dimensions: [{ Name: metric.dimension, Value: event.jobId }], Timestamp: timestamp, Value: Number(text), Unit: metric.unit };
}

/** The Lambda function's source (nodejs20.x, CommonJS index.js): executionDatum, then PutMetricData. */
export function lambdaSource(): string {
	return [
		`const { CloudWatchClient, PutMetricDataCommand } = require("@aws-sdk/client-cloudwatch");`,
		`const cloudwatch = new CloudWatchClient({});`,
		`const metric = ${JSON.stringify(downloadTimeMetric)};`,
		`const executionDatum = ${executionDatum.toString()};`,
		`exports.handler = async (event) => {`,
		`  const datum = executionDatum(event, metric);`,
		`  if (!datum) return { put: 0 };`,
		`  await cloudwatch.send(new PutMetricDataCommand({ Namespace: metric.namespace, MetricData: [{ ...datum, Timestamp: new Date(datum.Timestamp) }] }));`,
		`  return { put: 1 };`,
		`};`,
		``,
	].join("\n");
}

/*
	The stacks deploy.sh brings to this deployment's templates, left in place afterwards:
	  the monitor stack, one per account and region: the same pipeline for every deployment;
	  a stack per SNS topic the alarms notify, so that the topics of every deployment coexist, and a topic two
	  deployments share is one stack (AWS refuses a topic name that another stack's topic has).
*/

/** The monitor stack's name. */
export const monitorStackName = "xs-ota-download-time";

/** The name of the stack of one SNS topic: a valid stack name (letters, digits, "-", at most 128), one per topic. */
export function topicStackName(topic: string): string {
	const plain = `xs-ota-topic-${topic}`;
	if (/^[A-Za-z0-9-]{1,128}$/.test(plain)) return plain;
	// "_" and long names: a hash keeps apart the topics that read the same once made valid.
	const hash = createHash("sha256").update(topic).digest("hex").slice(0, 8);
	return `${plain.replace(/_/g, "-").slice(0, 128 - 9)}-${hash}`;
}

/** The CloudFormation template of the stack of one SNS topic, named as the alarms' ARNs say. */
export function topicTemplate(topic: string): Record<string, unknown> {
	return {
		AWSTemplateFormatVersion: "2010-09-09",
		Description: `xs-ota: the SNS topic ${topic}, which alarms of xs-ota deployments notify`,
		Resources: { Topic: { Type: "AWS::SNS::Topic", Properties: { TopicName: topic } } },
		Outputs: { Topic: { Value: { Ref: "Topic" } } },
	};
}

/**
	The CloudFormation template of the monitor stack, the metric's pipeline: the Lambda function and its role
	(PutMetricData in the metric's namespace, its own logs), the topic rule and the permission that lets AWS IoT
	invoke the function.
*/
export function monitorTemplate(): Record<string, unknown> {
	return {
		AWSTemplateFormatVersion: "2010-09-09",
		Description: "xs-ota: downloadTime from job execution events into CloudWatch",
		Resources: {
			MetricFunctionRole: {
				Type: "AWS::IAM::Role",
				Properties: {
					AssumeRolePolicyDocument: {
						Version: "2012-10-17",
						Statement: [{ Effect: "Allow", Principal: { Service: "lambda.amazonaws.com" }, Action: "sts:AssumeRole" }],
					},
					Policies: [{
						PolicyName: "put-download-time",
						PolicyDocument: {
							Version: "2012-10-17",
							Statement: [
								{ Effect: "Allow", Action: "cloudwatch:PutMetricData", Resource: "*", Condition: { StringEquals: { "cloudwatch:namespace": downloadTimeMetric.namespace } } },
								{ Effect: "Allow", Action: ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"], Resource: { "Fn::Sub": "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:*" } },
							],
						},
					}],
				},
			},
			MetricFunction: {
				Type: "AWS::Lambda::Function",
				Properties: {
					Runtime: "nodejs20.x",
					Handler: "index.handler",
					Timeout: 10,
					Role: { "Fn::GetAtt": ["MetricFunctionRole", "Arn"] },
					Code: { ZipFile: lambdaSource() },
				},
			},
			JobExecutionRule: {
				Type: "AWS::IoT::TopicRule",
				Properties: {
					TopicRulePayload: {
						Sql: "SELECT * FROM '$aws/events/jobExecution/#'",
						AwsIotSqlVersion: "2016-03-23",
						RuleDisabled: false,
						Actions: [{ Lambda: { FunctionArn: { "Fn::GetAtt": ["MetricFunction", "Arn"] } } }],
					},
				},
			},
			RuleInvokesFunction: {
				Type: "AWS::Lambda::Permission",
				Properties: {
					Action: "lambda:InvokeFunction",
					FunctionName: { Ref: "MetricFunction" },
					Principal: "iot.amazonaws.com",
					SourceArn: { "Fn::GetAtt": ["JobExecutionRule", "Arn"] },
					SourceAccount: { Ref: "AWS::AccountId" },
				},
			},
		},
		Outputs: { MetricFunction: { Value: { Ref: "MetricFunction" } } },
	};
}
