import type { DomainName } from '../src/domain/domains';

/** A valid record for each domain, with child rows. */
export function sampleRecord(domain: DomainName, id: string, overrides: Record<string, unknown> = {}) {
  const base = {
    model: 'bert-base-uncased',
    hardware: 'cpu',
    started_at: '2026-11-20T10:00:00Z',
    duration_ms: 1200,
    tags: ['nightly', 'cpu'],
  };
  if (domain === 'test') {
    return {
      run_id: id,
      ...base,
      status: 'passed',
      test_type: 'integration',
      tests_total: 10,
      tests_passed: 10,
      steps: [
        { step_no: 1, name: 'load', status: 'passed', duration_ms: 100 },
        { step_no: 2, name: 'infer', status: 'passed', duration_ms: 900 },
      ],
      metrics: [{ name: 'memory', value: 512, unit: 'MB' }],
      ...overrides,
    };
  }
  if (domain === 'generator') {
    return {
      task_id: id,
      ...base,
      status: 'completed',
      generator_type: 'test',
      template: 'encoder',
      lines_generated: 420,
      steps: [{ step_no: 1, name: 'render', status: 'completed' }],
      metrics: [{ name: 'tokens', value: 1000 }],
      ...overrides,
    };
  }
  return {
    run_id: id,
    ...base,
    status: 'completed',
    batch_size: 8,
    precision: 'fp16',
    latency_ms: 12.5,
    throughput: 640,
    memory_mb: 2048,
    metrics: [{ name: 'warmup_ms', value: 30, unit: 'ms' }],
    hardware_metrics: [{ device_name: 'Xeon', cpu_percent: 87.5 }],
    model_metrics: { parameter_count: 110000000, model_size_mb: 420 },
    ...overrides,
  };
}

export const idOf = (domain: DomainName) => (domain === 'generator' ? 'task_id' : 'run_id');
export const nouns = (domain: DomainName) =>
  domain === 'generator' ? { one: 'task', many: 'tasks' } : { one: 'run', many: 'runs' };
