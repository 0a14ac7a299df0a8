// An application evaluating a vexil flag through OpenFeature's own OFREP provider
// for servers (@openfeature/ofrep-provider), unmodified.
//
// It reads one flag key per line on stdin and prints, per line, the details of its
// boolean evaluation as JSON: what the crate's test (tests/it/openfeature.rs)
// checks after a flip made with `vexil flip` and after the client key is revoked.
// VEXIL_URL is the server, VEXIL_CLIENT_KEY the client key it sends.

import { createInterface } from 'node:readline';
import { OpenFeature } from '@openfeature/server-sdk';
import { OFREPProvider } from '@openfeature/ofrep-provider';

await OpenFeature.setProviderAndWait(
  new OFREPProvider({
    baseUrl: process.env.VEXIL_URL,
    headers: [['Authorization', `Bearer ${process.env.VEXIL_CLIENT_KEY}`]],
  }),
);
const client = OpenFeature.getClient();
const context = { targetingKey: 'user-1', plan: 'gold' };

for await (const line of createInterface({ input: process.stdin })) {
  const flag = line.trim();
  if (!flag) continue;
  const details = await client.getBooleanDetails(flag, false, context);
  console.log(
    JSON.stringify({
      value: details.value,
      reason: details.reason,
      variant: details.variant ?? null,
      error_code: details.errorCode ?? null,
    }),
  );
}
await OpenFeature.close();
