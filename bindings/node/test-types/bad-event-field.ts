// expect: TS2339 markerId
import { Player } from 'audioplay';
new Player().on('marker', (e) => { const id: number = e.markerId; void id; });
