import { useEffect, useState } from 'react';
import { get, query } from '../api/http';
import type { AccessRight, SelfInfo } from '../api/types';
import { useSession } from '../session/session';

/**
 * The rights this tab's token holds over a namespace and service (every one when left out), as
 * the server decides them; the console offers an action only when its right is here.
 */
export function useRights(namespace?: string, service?: string): ReadonlySet<AccessRight> {
  const { self } = useSession();
  const whole = namespace === undefined && service === undefined;
  const [rights, setRights] = useState<ReadonlySet<AccessRight>>(() => new Set(whole ? self.rights : []));
  useEffect(() => {
    if (whole) {
      setRights(new Set(self.rights));
      return;
    }
    let stopped = false;
    void get<SelfInfo>(`/v1/tokens/self${query({ namespace, service })}`)
      .then((s) => !stopped && setRights(new Set(s.rights)))
      .catch(() => !stopped && setRights(new Set()));
    return () => {
      stopped = true;
    };
  }, [namespace, service, whole, self]);
  return rights;
}
