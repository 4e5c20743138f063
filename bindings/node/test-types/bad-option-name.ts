// expect: TS2561 rte
import { Player } from 'audioplay';
new Player({ rte: 48000 });
