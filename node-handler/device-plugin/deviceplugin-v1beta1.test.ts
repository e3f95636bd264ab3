// The run-time descriptor must say exactly what the .proto says: field numbers and types are the
// wire format the kubelet speaks.
import { describe, expect, it } from '@jest/globals';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as protoLoader from '@grpc/proto-loader';
import { devicePluginDescriptor } from './deviceplugin-v1beta1.js';
import { devicePluginLoadOptions } from './plugin.js';

const protoFile = path.join(path.dirname(fileURLToPath(import.meta.url)), 'deviceplugin-v1beta1.proto');

/** Each service method's paths and streaming, and each message's descriptor, without file names. */
function shape(definition: protoLoader.PackageDefinition): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, entry] of Object.entries(definition)) {
    if ('format' in entry) {
      out[name] = (entry as protoLoader.MessageTypeDefinition<object, object>).type;
    } else {
      out[name] = Object.fromEntries(
        Object.entries(entry).map(([method, m]) => [
          method,
          { path: m.path, requestStream: m.requestStream, responseStream: m.responseStream, request: m.requestType.type, response: m.responseType.type },
        ]),
      );
    }
  }
  return out;
}

describe('device-plugin v1beta1 descriptor', () => {
  it('matches the .proto', () => {
    const fromProto = protoLoader.loadSync(protoFile, devicePluginLoadOptions);
    const fromDescriptor = protoLoader.fromJSON(devicePluginDescriptor, devicePluginLoadOptions);
    expect(shape(fromDescriptor)).toEqual(shape(fromProto));
  });

  it('names the kubelet’s methods as the kubelet calls them', () => {
    const definition = protoLoader.fromJSON(devicePluginDescriptor, devicePluginLoadOptions);
    const paths = (service: string): string[] => Object.values(definition[service] as protoLoader.ServiceDefinition).map((method) => method.path);
    expect(paths('v1beta1.Registration')).toEqual(['/v1beta1.Registration/Register']);
    expect(paths('v1beta1.DevicePlugin')).toEqual([
      '/v1beta1.DevicePlugin/GetDevicePluginOptions',
      '/v1beta1.DevicePlugin/ListAndWatch',
      '/v1beta1.DevicePlugin/GetPreferredAllocation',
      '/v1beta1.DevicePlugin/Allocate',
      '/v1beta1.DevicePlugin/PreStartContainer',
    ]);
  });
});
