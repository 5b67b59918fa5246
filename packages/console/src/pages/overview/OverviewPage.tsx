import { ClusterPanel } from './ClusterPanel';
import { RateChart } from './RateChart';
import { ServicesPanel } from './ServicesPanel';

/** What is registered and is it healthy: services per namespace, traffic, the nodes. */
export function OverviewPage() {
  return (
    <div className="overview">
      <ServicesPanel />
      <div className="side">
        <RateChart />
        <ClusterPanel />
      </div>
    </div>
  );
}
