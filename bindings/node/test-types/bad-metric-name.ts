// expect: TS2820 underrun
import { MetricName } from 'audioplay';
const name: MetricName = 'underrun';
void name;
