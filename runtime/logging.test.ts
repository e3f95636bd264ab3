import { describe, expect, it } from '@jest/globals';
import { Writable } from 'node:stream';
import { createRootLogger } from './logging.js';

function capture(): { lines: Array<Record<string, unknown>>; destination: Writable } {
  const lines: Array<Record<string, unknown>> = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      callback();
    },
  });
  return { lines, destination };
}

describe('root logger', () => {
  it('redacts cloud-init payloads and credentials nested in logged objects', () => {
    const { lines, destination } = capture();
    const log = createRootLogger({ component: 'controller', level: 'info', destination });
    const vmi = {
      metadata: { name: 'vm1' },
      spec: { volumes: [{ name: 'ci', cloudInitNoCloud: { userData: '#cloud-config\npassword: hunter2' } }] },
    };
    log.info({ vmi, headers: { authorization: 'Bearer abc' }, token: 'xyz' }, 'rendering');
    const text = JSON.stringify(lines[0]);
    expect(text).not.toContain('hunter2');
    expect(text).not.toContain('Bearer abc');
    expect(text).not.toContain('xyz');
    expect(text).toContain('vm1');
    expect(lines[0]).toMatchObject({ level: 'info', component: 'controller', msg: 'rendering' });
  });

  it('takes its level from LOG_LEVEL', () => {
    const saved = process.env['LOG_LEVEL'];
    process.env['LOG_LEVEL'] = 'warn';
    try {
      const { lines, destination } = capture();
      const log = createRootLogger({ component: 'c', destination });
      log.info('hidden');
      log.warn('shown');
      expect(lines.map((l) => l['msg'])).toEqual(['shown']);
    } finally {
      if (saved === undefined) delete process.env['LOG_LEVEL'];
      else process.env['LOG_LEVEL'] = saved;
    }
  });
});
