import { describe, expect, it } from '@jest/globals';
import { ApiError } from '../runtime/kube.js';
import { silentLogger } from '../runtime/logging.js';
import { untilVmiApiServed } from './until-served.js';

const apiError = (code: number, reason: string) => new ApiError(code, reason, reason, 'GET', '/apis/kubevirt.io/v1/virtualmachineinstances');

/** An attempt that throws `errors` one after another, then answers 'served'. */
function failingFirst(errors: Error[]): { attempt: () => Promise<string>; calls: () => number } {
  let calls = 0;
  return {
    attempt: async () => {
      const error = errors[calls++];
      if (error) throw error;
      return 'served';
    },
    calls: () => calls,
  };
}

describe('untilVmiApiServed', () => {
  it('waits through a missing CRD (404), storage still initializing (429) and an unavailable API server (503)', async () => {
    const api = failingFirst([apiError(404, 'NotFound'), apiError(429, 'TooManyRequests'), apiError(503, 'ServiceUnavailable')]);
    await expect(untilVmiApiServed(api.attempt, new AbortController().signal, silentLogger, 1)).resolves.toBe('served');
    expect(api.calls()).toBe(4);
  });

  it('throws any other error at once', async () => {
    for (const error of [apiError(403, 'Forbidden'), apiError(500, 'InternalError'), new Error('socket hang up')]) {
      const api = failingFirst([error]);
      await expect(untilVmiApiServed(api.attempt, new AbortController().signal, silentLogger, 1)).rejects.toBe(error);
      expect(api.calls()).toBe(1);
    }
  });

  it('stops waiting once the process is shutting down', async () => {
    const aborted = new AbortController();
    aborted.abort();
    const error = apiError(429, 'TooManyRequests');
    await expect(untilVmiApiServed(failingFirst([error]).attempt, aborted.signal, silentLogger, 1)).rejects.toBe(error);
  });
});
