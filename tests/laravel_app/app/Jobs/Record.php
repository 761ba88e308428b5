<?php

namespace App\Jobs;

use Illuminate\Bus\Queueable;
use Illuminate\Contracts\Queue\ShouldQueue;
use Illuminate\Foundation\Bus\Dispatchable;
use Illuminate\Queue\InteractsWithQueue;
use Illuminate\Queue\SerializesModels;

/**
 * Appends its tag to storage/app/ran.log (one line per run, so tests see every run); throws
 * instead while the file storage/app/broken exists.
 */
class Record implements ShouldQueue
{
    use Dispatchable, InteractsWithQueue, Queueable, SerializesModels;

    public function __construct(public string $tag)
    {
    }

    public function handle(): void
    {
        if (is_file(storage_path('app/broken'))) {
            throw new \RuntimeException("{$this->tag} is broken");
        }
        file_put_contents(storage_path('app/ran.log'), $this->tag."\n", FILE_APPEND | LOCK_EX);
    }
}
