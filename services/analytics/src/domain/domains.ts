/**
 * The three analytics domains as data: table names, columns and the statuses that count as
 * success. DDL, ingest validation, filters, exports, the OpenAPI document and the README's
 * column tables all come from these specs, so a column is declared once.
 */

export type ColumnType = 'VARCHAR' | 'INTEGER' | 'BIGINT' | 'DOUBLE' | 'BOOLEAN' | 'TIMESTAMPTZ';

export interface Column {
  name: string;
  type: ColumnType;
  required?: boolean;
  doc: string;
}

export interface ChildTable {
  /** Key of the array (or object, for one-row children) in an ingested record. */
  key: string;
  table: string;
  /** One row per parent (an object) instead of many (an array). */
  single?: boolean;
  columns: Column[];
}

export type DomainName = 'test' | 'generator' | 'benchmark';

export interface DomainSpec {
  name: DomainName;
  /** URL nouns: /runs and /run/{id}, or /tasks and /task/{id}. */
  record: 'run' | 'task';
  records: 'runs' | 'tasks';
  /** Main table and its key column (run_id or task_id). */
  table: string;
  idColumn: string;
  batchTable: string;
  tagsTable: string;
  /** Columns of the main table besides the common ones. */
  columns: Column[];
  children: ChildTable[];
  statuses: string[];
  successStatuses: string[];
  /** The numeric column the performance report and model stats centre on. */
  primaryMetric: string;
  /** Further numeric columns averaged in stats and performance reports. */
  summaryMetrics: string[];
}

/** Columns every record has, in table order after the id. */
export function commonColumns(statuses: string[]): Column[] {
  return [
    { name: 'batch_id', type: 'VARCHAR', doc: 'batch this record belongs to' },
    { name: 'model', type: 'VARCHAR', required: true, doc: 'model name, e.g. bert-base-uncased' },
    { name: 'hardware', type: 'VARCHAR', doc: 'hardware platform, e.g. cpu, cuda, rocm, qpu' },
    { name: 'status', type: 'VARCHAR', required: true, doc: `one of ${statuses.join(', ')}` },
    { name: 'started_at', type: 'TIMESTAMPTZ', doc: 'ISO 8601' },
    { name: 'finished_at', type: 'TIMESTAMPTZ', doc: 'ISO 8601' },
    { name: 'duration_ms', type: 'DOUBLE', doc: 'wall time' },
    { name: 'error_message', type: 'VARCHAR', doc: 'why it failed, when it did' },
  ];
}

const metricsColumns: Column[] = [
  { name: 'name', type: 'VARCHAR', required: true, doc: 'metric name' },
  { name: 'value', type: 'DOUBLE', required: true, doc: 'value' },
  { name: 'unit', type: 'VARCHAR', doc: 'unit, e.g. ms, MB, items/s' },
];

const stepColumns: Column[] = [
  { name: 'step_no', type: 'INTEGER', required: true, doc: 'order of the step, from 1' },
  { name: 'name', type: 'VARCHAR', required: true, doc: 'step name' },
  { name: 'status', type: 'VARCHAR', required: true, doc: 'step status' },
  { name: 'started_at', type: 'TIMESTAMPTZ', doc: 'ISO 8601' },
  { name: 'finished_at', type: 'TIMESTAMPTZ', doc: 'ISO 8601' },
  { name: 'duration_ms', type: 'DOUBLE', doc: 'wall time' },
  { name: 'message', type: 'VARCHAR', doc: 'output or error text' },
];

export const batchColumns: Column[] = [
  { name: 'name', type: 'VARCHAR', doc: 'human name of the batch' },
  { name: 'description', type: 'VARCHAR', doc: 'what the batch is for' },
  { name: 'status', type: 'VARCHAR', required: true, doc: 'running, completed or failed' },
  { name: 'expected_count', type: 'INTEGER', doc: 'records the batch will hold, when known' },
  { name: 'model', type: 'VARCHAR', doc: 'model, when the batch is about one' },
  { name: 'hardware', type: 'VARCHAR', doc: 'hardware, when the batch is about one' },
  { name: 'started_at', type: 'TIMESTAMPTZ', doc: 'ISO 8601' },
  { name: 'finished_at', type: 'TIMESTAMPTZ', doc: 'ISO 8601' },
];
export const BATCH_STATUSES = ['running', 'completed', 'failed'];

const testStatuses = ['pending', 'running', 'passed', 'failed', 'error', 'skipped'];
const generatorStatuses = ['pending', 'running', 'completed', 'failed'];
const benchmarkStatuses = ['running', 'completed', 'failed'];

export const DOMAINS: Record<DomainName, DomainSpec> = {
  test: {
    name: 'test',
    record: 'run',
    records: 'runs',
    table: 'test_runs',
    idColumn: 'run_id',
    batchTable: 'test_batch_runs',
    tagsTable: 'test_run_tags',
    statuses: testStatuses,
    successStatuses: ['passed'],
    columns: [
      { name: 'test_type', type: 'VARCHAR', doc: 'unit, integration, hardware, end-to-end, …' },
      { name: 'test_name', type: 'VARCHAR', doc: 'suite or test module' },
      { name: 'platform', type: 'VARCHAR', doc: 'operating system or runtime' },
      { name: 'tests_total', type: 'INTEGER', doc: 'test cases run' },
      { name: 'tests_passed', type: 'INTEGER', doc: 'test cases passed' },
      { name: 'tests_failed', type: 'INTEGER', doc: 'test cases failed' },
      { name: 'tests_skipped', type: 'INTEGER', doc: 'test cases skipped' },
    ],
    children: [
      { key: 'steps', table: 'test_run_steps', columns: stepColumns },
      { key: 'metrics', table: 'test_run_metrics', columns: metricsColumns },
    ],
    primaryMetric: 'duration_ms',
    summaryMetrics: ['tests_total', 'tests_failed'],
  },
  generator: {
    name: 'generator',
    record: 'task',
    records: 'tasks',
    table: 'generator_tasks',
    idColumn: 'task_id',
    batchTable: 'generator_batch_tasks',
    tagsTable: 'generator_task_tags',
    statuses: generatorStatuses,
    successStatuses: ['completed'],
    columns: [
      { name: 'generator_type', type: 'VARCHAR', doc: 'what was generated: test, skill, benchmark, …' },
      { name: 'template', type: 'VARCHAR', doc: 'template used' },
      { name: 'output_path', type: 'VARCHAR', doc: 'where the output went' },
      { name: 'output_bytes', type: 'BIGINT', doc: 'size of the output' },
      { name: 'lines_generated', type: 'INTEGER', doc: 'lines of output' },
    ],
    children: [
      { key: 'steps', table: 'generator_task_steps', columns: stepColumns },
      { key: 'metrics', table: 'generator_task_metrics', columns: metricsColumns },
    ],
    primaryMetric: 'duration_ms',
    summaryMetrics: ['lines_generated', 'output_bytes'],
  },
  benchmark: {
    name: 'benchmark',
    record: 'run',
    records: 'runs',
    table: 'benchmark_runs',
    idColumn: 'run_id',
    batchTable: 'benchmark_batch_runs',
    tagsTable: 'benchmark_run_tags',
    statuses: benchmarkStatuses,
    successStatuses: ['completed'],
    columns: [
      { name: 'batch_size', type: 'INTEGER', doc: 'inputs per forward pass' },
      { name: 'sequence_length', type: 'INTEGER', doc: 'tokens per input, when it applies' },
      { name: 'precision', type: 'VARCHAR', doc: 'fp32, fp16, int8, …' },
      { name: 'iterations', type: 'INTEGER', doc: 'measured iterations' },
      { name: 'latency_ms', type: 'DOUBLE', doc: 'mean latency per iteration' },
      { name: 'latency_p95_ms', type: 'DOUBLE', doc: '95th percentile latency per iteration' },
      { name: 'throughput', type: 'DOUBLE', doc: 'items per second' },
      { name: 'memory_mb', type: 'DOUBLE', doc: 'peak memory' },
    ],
    children: [
      { key: 'metrics', table: 'benchmark_metrics', columns: metricsColumns },
      {
        key: 'hardware_metrics',
        table: 'benchmark_hardware_metrics',
        columns: [
          { name: 'device_name', type: 'VARCHAR', doc: 'device, e.g. NVIDIA A100-SXM4-40GB' },
          { name: 'cpu_percent', type: 'DOUBLE', doc: 'CPU utilisation' },
          { name: 'gpu_percent', type: 'DOUBLE', doc: 'accelerator utilisation' },
          { name: 'memory_used_mb', type: 'DOUBLE', doc: 'device memory in use' },
          { name: 'power_watts', type: 'DOUBLE', doc: 'power draw' },
          { name: 'temperature_c', type: 'DOUBLE', doc: 'device temperature' },
          { name: 'recorded_at', type: 'TIMESTAMPTZ', doc: 'when it was sampled' },
        ],
      },
      {
        key: 'model_metrics',
        table: 'benchmark_model_metrics',
        single: true,
        columns: [
          { name: 'parameter_count', type: 'BIGINT', doc: 'model parameters' },
          { name: 'model_size_mb', type: 'DOUBLE', doc: 'weights on disk' },
          { name: 'load_time_ms', type: 'DOUBLE', doc: 'time to load the model' },
          { name: 'first_token_ms', type: 'DOUBLE', doc: 'time to first output' },
          { name: 'accuracy', type: 'DOUBLE', doc: 'task accuracy, 0..1' },
        ],
      },
    ],
    primaryMetric: 'latency_ms',
    summaryMetrics: ['throughput', 'memory_mb'],
  },
};

/** Main-table columns in table order: id, common, domain, then tags and created_at. */
export function recordColumns(spec: DomainSpec): Column[] {
  return [
    { name: spec.idColumn, type: 'VARCHAR', doc: 'unique id; generated when not given' },
    ...commonColumns(spec.statuses),
    ...spec.columns,
  ];
}
