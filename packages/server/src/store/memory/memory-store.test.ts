import { storeContract } from '../store-contract.js';
import { MemoryStore } from './memory-store.js';

storeContract('memory', {
  async create() {
    const s = new MemoryStore();
    await s.open();
    return s;
  },
});
