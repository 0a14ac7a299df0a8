// A browser application's view of vexil, run in Node: OpenFeature's web SDK with its
// OFREP provider (bulk evaluation with an ETag, and the event stream the bulk answer
// advertises, OFREP ADR 0008), polling off, so that a change can only arrive through
// the stream. Node 20 has no EventSource; the `eventsource` package stands in for the
// browser's, which sends no Authorization header (the advertised URL carries a token).
//
// It prints a JSON line when ready and one per ConfigurationChanged event, each with
// the value of the flag named by VEXIL_FLAG. VEXIL_URL is the server,
// VEXIL_CLIENT_KEY the client key it sends.

import EventSource from 'eventsource';
import { OpenFeature, ProviderEvents } from '@openfeature/web-sdk';
import { OFREPWebProvider } from '@openfeature/ofrep-web-provider';

globalThis.EventSource = EventSource;
const flag = process.env.VEXIL_FLAG;
const provider = new OFREPWebProvider({
  baseUrl: process.env.VEXIL_URL,
  headers: [['Authorization', `Bearer ${process.env.VEXIL_CLIENT_KEY}`]],
  pollInterval: 0,
  changeDetection: 'sse',
  cacheMode: 'disabled',
});
await OpenFeature.setContext({ targetingKey: 'user-1' });
const client = OpenFeature.getClient();
const say = (event) => {
  const details = client.getBooleanDetails(flag, false);
  console.log(JSON.stringify({ event, value: details.value, reason: details.reason }));
};
client.addHandler(ProviderEvents.ConfigurationChanged, () => say('changed'));
await OpenFeature.setProviderAndWait(provider);
say('ready');
// Until the test closes stdin.
process.stdin.resume();
process.stdin.on('end', async () => {
  await OpenFeature.close();
  process.exit(0);
});
