import { useState } from 'react';
import { api, seg } from '../../api/http';
import type { DiscoveredInstance } from '../../api/types';
import { ConfirmDialog } from '../../shared/ConfirmDialog';
import { ErrorNote } from '../../shared/ErrorNote';
import type { InstanceAction } from './InstanceTable';

/** Asks before an instance is changed, then changes it through the API; the watch shows the result. */
export function InstanceActionDialog({
  action,
  instance,
  onDone,
}: {
  action: InstanceAction;
  instance: DiscoveredInstance;
  onDone(): void;
}) {
  const [weight, setWeight] = useState(String(instance.weight));
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<Error>();
  const where = `${instance.host}:${instance.port}`;
  const path = `/v1/instances/${seg(instance.id)}`;

  const run = async () => {
    setBusy(true);
    setError(undefined);
    try {
      if (action === 'deregister') await api('DELETE', path);
      else if (action === 'weight') {
        const w = Number(weight);
        if (!/^\d+$/.test(weight) || w > 10000) throw new Error('weight must be a whole number in 0..10000');
        await api('PATCH', path, { weight: w });
      } else await api('PATCH', path, { isolate: action === 'isolate' });
      onDone();
    } catch (err) {
      setError(err as Error);
      setBusy(false);
    }
  };

  const texts: Record<InstanceAction, { title: string; confirm: string; body: string }> = {
    isolate: {
      title: `Isolate ${where}?`,
      confirm: 'Isolate',
      body: 'Discovery stops handing it out; it stays registered and keeps its heartbeats.',
    },
    unisolate: {
      title: `Un-isolate ${where}?`,
      confirm: 'Un-isolate',
      body: 'Discovery hands it out again while it is healthy.',
    },
    weight: {
      title: `Change the weight of ${where}`,
      confirm: 'Change weight',
      body: 'Balancers send it traffic in proportion to its weight (0 sends none).',
    },
    deregister: {
      title: `Deregister ${where}?`,
      confirm: 'Deregister',
      body: 'It is removed now. A provider that is still running registers again at its next heartbeat.',
    },
  };
  const t = texts[action];
  return (
    <ConfirmDialog
      title={t.title}
      confirmLabel={t.confirm}
      danger={action === 'deregister'}
      busy={busy}
      onConfirm={() => void run()}
      onCancel={onDone}
    >
      <p>{t.body}</p>
      <p className="mono muted">{instance.id}</p>
      {action === 'weight' && (
        <label>
          Weight <input type="number" min={0} max={10000} value={weight} onChange={(e) => setWeight(e.target.value)} />
        </label>
      )}
      <ErrorNote error={error} />
    </ConfirmDialog>
  );
}
