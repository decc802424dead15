import { useId } from 'react';

/** The part of JSON Schema the task params use (job-worker's TaskSpec, served as 2020-12). */
export interface ObjectSchema {
  type: 'object';
  properties?: Record<string, FieldSchema>;
  required?: string[];
}
interface FieldSchema {
  type?: 'string' | 'number' | 'integer' | 'boolean';
  description?: string;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  minimum?: number;
  maximum?: number;
  enum?: string[];
}

export type FormValues = Record<string, string | boolean>;

/** The params object from the form's values: empty optional fields left out, numbers as numbers. */
export function paramsFrom(schema: ObjectSchema, values: FormValues): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, field] of Object.entries(schema.properties ?? {})) {
    const v = values[name];
    if (v === undefined || v === '') continue;
    if (field.type === 'boolean') out[name] = Boolean(v);
    else if (field.type === 'number' || field.type === 'integer') out[name] = Number(v);
    else out[name] = v;
  }
  return out;
}

/**
 * A field per property of the task's params schema, with the schema's constraints as the
 * browser's own validation (required, pattern, lengths, bounds); the API checks them again.
 */
export function SchemaFields({
  schema,
  values,
  onChange,
}: {
  schema: ObjectSchema;
  values: FormValues;
  onChange: (values: FormValues) => void;
}) {
  const base = useId();
  const fields = Object.entries(schema.properties ?? {});
  if (fields.length === 0) return <p className="muted">This task takes no parameters.</p>;
  return (
    <>
      {fields.map(([name, f]) => {
        const id = `${base}-${name}`;
        const required = schema.required?.includes(name) ?? false;
        const set = (v: string | boolean) => onChange({ ...values, [name]: v });
        return (
          <div key={name} className="field">
            <label htmlFor={id}>
              {name}
              {required ? ' (required)' : ''}
            </label>
            {f.type === 'boolean' ? (
              <input
                id={id}
                type="checkbox"
                checked={Boolean(values[name])}
                onChange={(e) => set(e.target.checked)}
              />
            ) : f.enum ? (
              <select
                id={id}
                required={required}
                value={String(values[name] ?? '')}
                onChange={(e) => set(e.target.value)}
              >
                <option value="">—</option>
                {f.enum.map((o) => (
                  <option key={o}>{o}</option>
                ))}
              </select>
            ) : (
              <input
                id={id}
                type={f.type === 'number' || f.type === 'integer' ? 'number' : 'text'}
                step={f.type === 'integer' ? 1 : undefined}
                required={required}
                minLength={f.minLength}
                maxLength={f.maxLength}
                pattern={f.pattern}
                min={f.minimum}
                max={f.maximum}
                aria-describedby={f.description ? `${id}-help` : undefined}
                value={String(values[name] ?? '')}
                onChange={(e) => set(e.target.value)}
              />
            )}
            {f.description && (
              <small id={`${id}-help`} className="muted">
                {f.description}
              </small>
            )}
          </div>
        );
      })}
    </>
  );
}
