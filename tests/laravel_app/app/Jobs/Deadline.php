<?php

namespace App\Jobs;

use Illuminate\Bus\Queueable;
use Illuminate\Contracts\Queue\ShouldQueue;
use Illuminate\Foundation\Bus\Dispatchable;
use Illuminate\Queue\InteractsWithQueue;
use Illuminate\Queue\SerializesModels;
use RuntimeException;

/**
 * A job with retryUntil(): retried until $window seconds after dispatch. While the file
 * storage/app/broken exists it fails itself at once (to reach failed_jobs); otherwise it
 * appends its tag to storage/app/ran.log.
 */
class Deadline implements ShouldQueue
{
    use Dispatchable, InteractsWithQueue, Queueable, SerializesModels;

    public function __construct(public string $tag, public int $window = 60)
    {
    }

    public function retryUntil(): \DateTimeInterface
    {
        return now()->addSeconds($this->window);
    }

    public function handle(): void
    {
        if (is_file(storage_path('app/broken'))) {
            $this->fail(new RuntimeException("{$this->tag} is broken"));

            return;
        }
        file_put_contents(storage_path('app/ran.log'), $this->tag."\n", FILE_APPEND | LOCK_EX);
    }
}
