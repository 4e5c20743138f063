export type Format = 's16' | 'f32';
export interface Event { kind: string; id: number; frame: number; heardMs: number; }
export class AudioplayError extends Error { status: number; }
export class Player {
  constructor(opts?: { rate?: number; channels?: number; format?: Format; device?: string; [setting: string]: unknown });
  write(samples: Int16Array | Float32Array | Buffer): number;
  drain(timeoutMs?: number): boolean;
  endUtterance(): void;
  mark(id: number): void;
  flush(fadeMs?: number): number;
  metrics(): Record<string, number | string>;
  pollEvent(): Event | null;
  close(): void;
}
export function version(): string;
